/**
 * @module bench/core
 * Micro-benchmark of ferrymail's pure protocol core, no sockets: `tsx bench/core.ts [--quick]`.
 * - commands: a realistic mix of command lines through `splitCommand` and the argument parser
 *   the verb calls for (`parseMailArg`, `parseRcptArg`, `parseHeloArg`): command lines per second;
 * - data: `DotDecoder` over a dot-stuffed 1 MiB message fed in 1,460-byte (one TCP segment) and
 *   64 KiB chunks: decoded bytes per second; and whole 4 KiB messages per second.
 * Each figure is the median of several timed trials after a warm-up. Prints one JSON object.
 */
import { splitCommand, parseMailArg, parseRcptArg, parseHeloArg } from '../src/smtp/command.js';
import { DotDecoder } from '../src/smtp/dot.js';
import { median } from './stats.js';

const quick = process.argv.includes('--quick');
const TRIAL_MS = quick ? 300 : 1000;
const TRIALS = quick ? 3 : 7;

/** Runs `fn` (which does `unit` units of work) repeatedly for TRIAL_MS; units per second. */
function rate(fn: () => number): number {
  const deadline = process.hrtime.bigint() + BigInt(TRIAL_MS) * 1_000_000n;
  const t0 = process.hrtime.bigint();
  let units = 0;
  let now = t0;
  do {
    units += fn();
    now = process.hrtime.bigint();
  } while (now < deadline);
  return units / (Number(now - t0) / 1e9);
}

function measure(fn: () => number): number {
  rate(fn); // warm-up: let the JIT settle
  const samples: number[] = [];
  for (let i = 0; i < TRIALS; i++) samples.push(rate(fn));
  return median(samples);
}

// ---- commands ------------------------------------------------------------------------------
const COMMANDS = [
  'EHLO client.example.com',
  'MAIL FROM:<bench@sender.test> SIZE=4096 BODY=8BITMIME',
  'RCPT TO:<user@example.net>',
  'RCPT TO:<First.Last+tag@sub.example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;first.last@example.org',
  'RCPT TO:<"quoted local"@[192.0.2.1]>',
  'RCPT TO:<Postmaster>',
  'DATA',
  'RSET',
  'MAIL FROM:<> RET=HDRS ENVID=QQ314159',
  'RCPT TO:<@relay.example.com:user@example.net>',
  'NOOP',
  'QUIT',
];
const opts = { utf8: false };
let sink = 0; // keeps results alive so the work is not optimised away

function parseAll(): number {
  for (const line of COMMANDS) {
    const cmd = splitCommand(line);
    switch (cmd.verb) {
      case 'MAIL':
        sink += parseMailArg(cmd.arg, opts).ok ? 1 : 0;
        break;
      case 'RCPT':
        sink += parseRcptArg(cmd.arg, opts).ok ? 1 : 0;
        break;
      case 'EHLO':
      case 'HELO':
        sink += parseHeloArg(cmd.arg).ok ? 1 : 0;
        break;
      default:
        sink += cmd.verb.length;
    }
  }
  return COMMANDS.length;
}

// ---- data ----------------------------------------------------------------------------------
/** A message of about `size` bytes with 76-octet lines, every 10th line dot-stuffed, plus CRLF.CRLF. */
function stuffedMessage(size: number): Buffer {
  const lines: string[] = ['Subject: core bench', ''];
  let total = 0;
  for (let i = 0; total < size; i++) {
    const line = (i % 10 === 0 ? '..' : '') + 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2).slice(0, 72);
    lines.push(line);
    total += line.length + 2;
  }
  return Buffer.from(lines.join('\r\n') + '\r\n.\r\n', 'latin1');
}

function chunked(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

function decodeChunks(chunks: readonly Buffer[], bytes: number): () => number {
  return () => {
    const dec = new DotDecoder({ maxLineLength: 1000 });
    for (const c of chunks) {
      const r = dec.push(c);
      sink += r.chunks.length;
      if (r.done) break;
    }
    return bytes;
  };
}

const big = stuffedMessage(1 << 20);
const small = stuffedMessage(4096);
const result = {
  commands_per_s: Math.round(measure(parseAll)),
  command_mix: COMMANDS.length,
  data_bytes_per_s_1460: Math.round(measure(decodeChunks(chunked(big, 1460), big.length))),
  data_bytes_per_s_64k: Math.round(measure(decodeChunks(chunked(big, 65536), big.length))),
  messages_4k_per_s: Math.round(measure(() => (decodeChunks([small], 1)(), 1))),
  trials: TRIALS,
  trial_ms: TRIAL_MS,
  node: process.version,
  checksum: sink % 1000,
};
console.log(JSON.stringify(result));
