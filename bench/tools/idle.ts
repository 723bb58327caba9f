/**
 * @module bench/tools/idle
 * Idle sessions for the memory measurement: usage `tsx bench/tools/idle.ts HOST PORT N HOLD_S`.
 * Opens N connections (at most 50 new ones every 10 ms), reads each greeting, sends EHLO and
 * waits for its full reply, then leaves the session idle. Prints `READY idle=I failed=F ms=T`
 * once every session is idle or failed (or at the set-up deadline), holds them HOLD_S seconds,
 * closes them all and prints `DONE` (or is stopped by the harness first). Set-up gets at most
 * 120 s; sessions still pending then count as neither idle nor failed.
 */
import { connect, type Socket } from 'node:net';

const [host = '127.0.0.1', portArg = '', nArg = '1000', holdArg = '10'] = process.argv.slice(2);
const port = Number(portArg);
const n = Number(nArg);
const holdMs = Number(holdArg) * 1000;
if (!['127.0.0.1', '::1'].includes(host) || !Number.isInteger(port) || !Number.isInteger(n) || n <= 0) {
  console.error('usage: idle.ts 127.0.0.1 PORT N HOLD_S');
  process.exit(64);
}
const t0 = Date.now();
const sockets: Socket[] = [];
let idle = 0;
let failed = 0;
let opened = 0;
let ready = false;

function settle(): void {
  if (ready || idle + failed < n) return;
  announce();
}

function announce(): void {
  if (ready) return;
  ready = true;
  console.log(`READY idle=${idle} failed=${failed} ms=${Date.now() - t0}`);
  setTimeout(finish, holdMs);
}

function finish(): void {
  for (const s of sockets) s.destroy();
  console.log(`DONE idle=${idle} failed=${failed}`);
  setTimeout(() => process.exit(0), 100);
}

function openOne(): void {
  opened++;
  const s = connect({ host, port });
  sockets.push(s);
  s.setEncoding('latin1');
  let buf = '';
  let state: 'greeting' | 'ehlo' | 'idle' | 'failed' = 'greeting';
  const fail = (): void => {
    if (state === 'failed') return;
    if (state === 'idle') {
      if (ready) return;
      idle--;
    }
    state = 'failed';
    failed++;
    settle();
  };
  s.on('data', (chunk: string) => {
    buf += chunk;
    let end: number;
    while ((end = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, end).replace(/\r$/, '');
      buf = buf.slice(end + 1);
      if (line[3] === '-') continue;
      if (state === 'greeting') {
        if (!line.startsWith('220')) return fail();
        state = 'ehlo';
        s.write('EHLO idle.bench.test\r\n');
      } else if (state === 'ehlo') {
        if (!line.startsWith('250')) return fail();
        state = 'idle';
        idle++;
        settle();
      }
    }
  });
  s.on('error', fail);
  s.on('close', fail);
}

const pace = setInterval(() => {
  for (let k = 0; k < 50 && opened < n; k++) openOne();
  if (opened >= n) clearInterval(pace);
}, 10);
setTimeout(announce, 120_000).unref();
