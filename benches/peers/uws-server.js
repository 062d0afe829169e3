// uWebSockets.js: its native addon loaded directly (so it cannot fall back to a pure-JS
// implementation), one pub/sub topic per room (the URL path). `ws.publish` reaches every
// subscriber of the topic except `ws` itself: the chat relay. With "echo", every message goes
// back to its sender instead, like `chatloop serve --echo` (benches/sockets.sh uses both).
// Usage: NODE_PATH=…/node_modules node uws-server.js PORT [echo]  (benches/peers/run.sh starts it)
const path = require('path');
const echo = process.argv[3] === 'echo';

const uWS = require(path.join(process.env.NODE_PATH, '@trufflesuite/uws-js-unofficial/binaries',
  `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`));
uWS.App().ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  // Bytes queued towards one slow client before uWS stops sending to it (its default is 64 KiB;
  // 1 MiB keeps a burst of fan-out from being dropped under a closed loop).
  maxBackpressure: 1024 * 1024,
  idleTimeout: 60,
  upgrade: (res, req, context) => {
    res.upgrade({ room: req.getUrl() }, req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
  },
  open: (ws) => { if (!echo) ws.subscribe(ws.getUserData().room); },
  message: echo
    ? (ws, message, isBinary) => { ws.send(message, isBinary); }
    : (ws, message, isBinary) => { ws.publish(ws.getUserData().room, message, isBinary); },
}).listen('127.0.0.1', Number(process.argv[2]), (ok) => { if (!ok) process.exit(1); });
