// uWebSockets.js: its native addon loaded directly (so it cannot fall back to a pure-JS
// implementation), one pub/sub topic per room (the URL path). `ws.publish` reaches every
// subscriber of the topic except `ws` itself: the chat relay. With "echo", every message goes
// back to its sender instead, like `chatloop serve --echo` (benches/sockets.sh uses both).
// With a certificate and key, it is `uWS.SSLApp` (wss://; benches/compare-tls.sh).
// Usage: NODE_PATH=…/node_modules node uws-server.js PORT [chat|echo] [CERT KEY]
// (benches/peers/run.sh, benches/sockets.sh and benches/compare-tls.sh start it)
const path = require('path');
const [port, mode, cert, key] = process.argv.slice(2);
const echo = mode === 'echo';

const uWS = require(path.join(process.env.NODE_PATH, '@trufflesuite/uws-js-unofficial/binaries',
  `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`));
const app = cert && key
  ? uWS.SSLApp({ cert_file_name: cert, key_file_name: key })
  : uWS.App();
app.ws('/*', {
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
}).listen('127.0.0.1', Number(port), (ok) => { if (!ok) process.exit(1); });
