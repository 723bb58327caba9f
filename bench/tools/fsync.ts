/**
 * @module bench/tools/fsync
 * The disk under every durable queue: usage `tsx bench/tools/fsync.ts DIR [COUNT]`. One at a
 * time, COUNT times each: (1) append 4 KiB to one file + fdatasync (a queue log without group
 * commit), (2) create a new 4 KiB file + fsync + close (a queue file per message, as Postfix,
 * Haraka and the smtp-server handler do). Prints one JSON object with the median and p99 in
 * milliseconds and the serial operations per second of each. Removes its files.
 */
import { openSync, writeSync, fdatasyncSync, fsyncSync, closeSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { median, percentile } from '../stats.js';

const [dirArg, countArg = '300'] = process.argv.slice(2);
const count = Number(countArg);
if (!dirArg || !Number.isInteger(count) || count <= 0) {
  console.error('usage: fsync.ts DIR [COUNT]');
  process.exit(64);
}
const dir = mkdtempSync(join(dirArg, 'fsync-'));
const block = Buffer.alloc(4096, 0x61);

function timed(op: (i: number) => void): { median_ms: number; p99_ms: number; ops_per_s: number } {
  const ms: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    op(i);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const total = ms.reduce((a, b) => a + b, 0);
  const r = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    median_ms: r(median(ms)),
    p99_ms: r(percentile(ms, 0.99)),
    ops_per_s: Math.round((count * 1000) / total),
  };
}

try {
  const log = openSync(join(dir, 'log'), 'a');
  const append = timed(() => {
    writeSync(log, block);
    fdatasyncSync(log);
  });
  closeSync(log);
  const newFile = timed((i) => {
    const fd = openSync(join(dir, `f${i}`), 'wx');
    writeSync(fd, block);
    fsyncSync(fd);
    closeSync(fd);
  });
  console.log(JSON.stringify({ count, append_fdatasync: append, new_file_fsync: newFile }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
