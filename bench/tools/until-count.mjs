#!/usr/bin/env node
// bench/tools/until-count.mjs LOG BASE TARGET_FILE DEADLINE_EPOCH_S
//
// The end of a relay run: the moment smtp-sink (-c, writing "mesg=N" counters to LOG) has counted
// BASE + TARGET messages. Started beside smtp-source, it polls the log's tail every 2 ms in one
// process (a shell loop forking tail/grep 20 times a second was both coarse, up to 50 ms late on
// runs that last a fraction of a second, and a load on the machine). TARGET is only known once
// smtp-source is done (the messages it got accepted): the shell writes it to TARGET_FILE then.
// Prints "<epoch seconds of the first poll that saw the count> <count - BASE>" and exits; at
// DEADLINE it prints the time and the count it reached.
import { openSync, readSync, fstatSync, readFileSync } from 'node:fs';

const [log, baseArg, targetFile, deadlineArg] = process.argv.slice(2);
const base = Number(baseArg);
const deadline = Number(deadlineArg) * 1000;
const tail = Buffer.alloc(512);
let fd = -1;
let target = Infinity;

function count() {
  if (fd < 0) {
    try {
      fd = openSync(log, 'r');
    } catch {
      return 0;
    }
  }
  const size = fstatSync(fd).size;
  const start = Math.max(0, size - tail.length);
  const n = readSync(fd, tail, 0, size - start, start);
  const text = tail.toString('latin1', 0, n);
  const i = text.lastIndexOf('mesg=');
  return i < 0 ? 0 : Number.parseInt(text.slice(i + 5), 10) || 0;
}

function poll() {
  const now = Date.now();
  if (target === Infinity) {
    try {
      const t = readFileSync(targetFile, 'utf8').trim();
      if (t !== '') target = Number(t);
    } catch {
      // not written yet: smtp-source is still sending
    }
  }
  const got = count() - base;
  if (got >= target || now >= deadline) {
    process.stdout.write(`${(now / 1000).toFixed(3)} ${got}\n`);
    process.exit(0);
  }
  setTimeout(poll, 2);
}
poll();
