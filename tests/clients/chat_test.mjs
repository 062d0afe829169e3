// Drives a chatloop chat server with Node's `ws` client.
//
// Run by tests/interop.rs, which starts the server and checks the exit status and the "ok"
// lines printed here. Usage: node chat_test.mjs ws://127.0.0.1:PORT SCENARIO [CA_FILE]
// With wss:// and CA_FILE, the clients speak TLS and trust that CA only.
//
// Scenarios (each expects a server configured for it, see tests/interop.rs):
//   relay      three clients in /a, two in /b: text and binary reach the others in the same
//              room only, never the sender; a client Ping is answered; a client Close is
//              answered with 1000
//   big        a 1 MiB binary and a 1 MiB text message relayed intact (server allows 2 MiB)
//   keepalive  the server Pings a silent client (ping interval 200 ms) and, since `ws`
//              answers with Pongs by itself, keeps it open past the 1 s idle timeout

import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

// How long "nothing arrives" is watched for; the server relays within a millisecond or two.
const QUIET = 300;
// Every wait is bounded so the script cannot hang (the Rust test also kills it after 60 s).
const WAIT = 5000;

function check(condition, what) {
  if (!condition) {
    console.log(`FAIL - ${what}`);
    process.exit(1);
  }
  console.log(`ok - ${what}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Resolves with the value of `promise`, or rejects after `ms` saying what was awaited.
function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A connected client that keeps what it receives: messages in a queue, pings counted, and the
// Close it got from the server.
class Client {
  constructor(url) {
    this.ws = new WebSocket(url, TLS);
    this.inbox = [];
    this.waiters = [];
    this.pings = 0;
    this.ws.on('message', (data, isBinary) => {
      const msg = isBinary ? { binary: true, data } : { binary: false, data: data.toString() };
      const waiter = this.waiters.shift();
      if (waiter) waiter(msg);
      else this.inbox.push(msg);
    });
    this.ws.on('ping', () => this.pings++);
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
    });
  }

  static async connect(url) {
    const client = new Client(url);
    await within(WAIT, `connecting to ${url}`, client.opened);
    return client;
  }

  // The next message, within WAIT.
  recv() {
    if (this.inbox.length) return Promise.resolve(this.inbox.shift());
    return within(WAIT, 'a message', new Promise((resolve) => this.waiters.push(resolve)));
  }

  // True if nothing arrives for QUIET ms.
  async silent() {
    await sleep(QUIET);
    if (this.inbox.length) console.log(`  unexpected message: ${String(this.inbox[0].data).slice(0, 80)}`);
    return this.inbox.length === 0;
  }

  send(data) {
    return new Promise((resolve, reject) => this.ws.send(data, (err) => (err ? reject(err) : resolve())));
  }

  // Sends Close 1000 and resolves with the code and reason of the server's Close.
  close() {
    this.ws.close(1000, 'bye');
    return within(WAIT, 'the closing handshake', this.closed);
  }
}

async function relay(base) {
  const [a1, a2, a3, b1, b2] = await Promise.all(
    ['/a', '/a', '/a', '/b', '/b'].map((path) => Client.connect(base + path)),
  );

  await a1.send('hello from a1');
  const texts = [await a2.recv(), await a3.recv()];
  check(texts.every((m) => !m.binary && m.data === 'hello from a1'), 'text from a1 reaches a2 and a3');
  check(await a1.silent(), 'text is not echoed to its sender');
  check((await b1.silent()) && (await b2.silent()), 'text stays in its room (/b hears nothing)');

  const blob = Buffer.alloc(1024, 0).map((_, i) => i % 256);
  await a2.send(blob);
  const blobs = [await a1.recv(), await a3.recv()];
  check(blobs.every((m) => m.binary && blob.equals(m.data)), 'binary from a2 reaches a1 and a3 as binary, intact');
  check(await a2.silent(), 'binary is not echoed to its sender');

  await b1.send('only for /b');
  check((await b2.recv()).data === 'only for /b', 'text from b1 reaches b2');
  check((await a1.silent()) && (await a2.silent()) && (await a3.silent()), '/a hears nothing from /b');

  const pong = new Promise((resolve) => a1.ws.once('pong', resolve));
  a1.ws.ping(Buffer.from('are you there'));
  const payload = await within(WAIT, 'a Pong', pong);
  check(payload.toString() === 'are you there', 'a client Ping is answered with a Pong carrying its payload');

  const { code } = await a3.close();
  check(code === 1000, "a3's Close 1000 is answered with Close 1000");
  await a1.send('after a3 left');
  check((await a2.recv()).data === 'after a3 left', 'the room keeps working after a leave');

  for (const client of [a1, a2, b1, b2]) {
    check((await client.close()).code === 1000, 'clean close: 1000 both ways');
  }
}

async function big(base) {
  const [sender, receiver] = await Promise.all([0, 1].map(() => Client.connect(base + '/big')));
  const blob = Buffer.alloc(1 << 20).map((_, i) => (i * 7 + 3) % 256);
  await sender.send(blob);
  const got = await receiver.recv();
  check(got.binary && blob.equals(got.data), 'a 1 MiB binary message is relayed intact');
  const text = '0123456789abcdef'.repeat(1 << 16);
  await sender.send(text);
  check((await receiver.recv()).data === text, 'a 1 MiB text message is relayed intact');
  check(await sender.silent(), 'the big messages are not echoed to their sender');
  for (const client of [sender, receiver]) await client.close();
}

async function keepalive(base) {
  const [quiet, other] = await Promise.all([0, 1].map(() => Client.connect(base + '/keepalive')));
  // Silent for 2.5 s: well past the server's 1 s idle timeout. `ws` answers each of the
  // server's Pings by itself.
  await sleep(2500);
  check(quiet.inbox.length === 0 && other.inbox.length === 0, 'nothing but Pings arrives while silent');
  check(quiet.pings >= 2 && other.pings >= 2, `the server pinged the silent clients (${quiet.pings} and ${other.pings} Pings)`);
  await quiet.send('still here');
  check((await other.recv()).data === 'still here', 'Pong-answering clients stay open past the idle timeout');
  for (const client of [quiet, other]) {
    check((await client.close()).code === 1000, 'clean close after the keepalive');
  }
}

const [base, scenario, caFile] = process.argv.slice(2);
// For wss://: trust the test CA only (Node's own roots are replaced, not added to).
const TLS = caFile ? { ca: readFileSync(caFile) } : {};
const scenarios = { relay, big, keepalive };
const started = Date.now();
try {
  await scenarios[scenario](base);
} catch (err) {
  console.log(`FAIL - ${err.message}`);
  process.exit(1);
}
console.log(`node ws: ${scenario} passed in ${((Date.now() - started) / 1000).toFixed(2)} s`);
