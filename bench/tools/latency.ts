/**
 * @module bench/tools/latency
 * Transaction latency at one session: usage `tsx bench/tools/latency.ts HOST PORT COUNT [SIZE]`.
 * One connection, EHLO once, then COUNT transactions one at a time, lock-step (no pipelining):
 * each is timed from writing MAIL to receiving the reply after the data's final dot.
 * Prints one JSON line: { n, ok, median_ms, p99_ms, mean_ms, max_ms, errors, first_error }.
 */
import { SmtpWire, makeMessage } from './smtp-wire.js';
import { median, percentile, mean } from '../stats.js';

const [host = '127.0.0.1', portArg = '', countArg = '200', sizeArg = '4096'] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(countArg);
const size = Number(sizeArg);
if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(count) || count <= 0) {
  console.error('usage: latency.ts HOST PORT COUNT [SIZE]');
  process.exit(64);
}
const from = 'bench@sender.test';
const to = process.env.LATENCY_RCPT ?? 'user@example.net';
// dot-terminated once; the same bytes every transaction
const data = makeMessage(size, from, to) + '.\r\n';

const hard = setTimeout(() => {
  console.error('latency: overall time limit reached');
  process.exit(2);
}, 300_000);

async function main(): Promise<void> {
  const wire = await SmtpWire.open(host, port);
  const greeting = await wire.reply();
  if (greeting.code !== 220) throw new Error(`greeting ${greeting.code}`);
  const ehlo = await wire.command('EHLO latency.bench.test');
  if (ehlo.code !== 250) throw new Error(`EHLO ${ehlo.code}`);
  const times: number[] = [];
  let errors = 0;
  let firstError = '';
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    const steps: Array<[string, number]> = [
      [`MAIL FROM:<${from}>`, 250],
      [`RCPT TO:<${to}>`, 250],
      ['DATA', 354],
    ];
    let ok = true;
    for (const [line, want] of steps) {
      const r = await wire.command(line);
      if (r.code !== want) {
        ok = false;
        firstError ||= `${line} -> ${r.lines.join(' | ')}`;
        break;
      }
    }
    if (ok) {
      wire.socket.write(data);
      const r = await wire.reply();
      if (r.code !== 250) {
        ok = false;
        firstError ||= `end of data -> ${r.lines.join(' | ')}`;
      }
    }
    if (ok) times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    else {
      errors++;
      const r = await wire.command('RSET');
      if (r.code !== 250) break;
    }
  }
  await wire.command('QUIT').catch(() => undefined);
  wire.close();
  const round = (x: number): number => Math.round(x * 1000) / 1000;
  console.log(
    JSON.stringify({
      n: count,
      ok: times.length,
      median_ms: round(median(times)),
      p99_ms: round(percentile(times, 0.99)),
      mean_ms: round(mean(times)),
      max_ms: round(Math.max(...times)),
      errors,
      first_error: firstError,
    }),
  );
}

main().then(
  () => clearTimeout(hard),
  (err: unknown) => {
    console.error(`latency: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
