// uWebSockets.js for benches/sockets.sh: its native addon loaded directly (no pure-JS
// fallback), on 127.0.0.1:PORT. Chat: one topic per room (the URL path); `ws.publish` reaches
// every subscriber but the sender, like chatloop's chat mode. With "echo": every message goes
// back to its sender, like `chatloop serve --echo`.
//
//   UWS_DIR=benches/.compare node benches/uws-server.js PORT [echo]
const path = require('path');
const uWS = require(path.resolve(process.env.UWS_DIR || 'benches/.compare',
  'node_modules/@trufflesuite/uws-js-unofficial/binaries',
  `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`));
const echo = process.argv[3] === 'echo';
uWS.App().ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
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
