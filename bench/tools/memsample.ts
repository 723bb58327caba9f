/**
 * @module bench/tools/memsample
 * Memory of a process tree: usage `tsx bench/tools/memsample.ts PID...`. Finds every descendant
 * of the given processes in /proc and prints `nprocs rss_kib pss_kib`: VmRSS (what `ps -o rss`
 * shows; shared pages counted once per process) and Pss (shared pages split fairly) summed over
 * them. One pass over /proc, so a tree of thousands of processes (Postfix: one smtpd per
 * session) is sampled in a fraction of a second. Processes that exit meanwhile are skipped.
 */
import { readdirSync, readFileSync } from 'node:fs';

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
}

function kib(text: string | undefined, field: string): number {
  if (text === undefined) return 0;
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

const roots = process.argv
  .slice(2)
  .map(Number)
  .filter((p) => Number.isInteger(p) && p > 0);
const children = new Map<number, number[]>();
for (const name of readdirSync('/proc')) {
  if (!/^\d+$/.test(name)) continue;
  const stat = readOr(`/proc/${name}/stat`);
  if (stat === undefined) continue;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so parse after the last ')'
  const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  const list = children.get(ppid);
  if (list) list.push(Number(name));
  else children.set(ppid, [Number(name)]);
}
const seen = new Set<number>();
const queue = [...roots];
while (queue.length > 0) {
  const pid = queue.pop() as number;
  if (seen.has(pid)) continue;
  seen.add(pid);
  queue.push(...(children.get(pid) ?? []));
}
let n = 0;
let rss = 0;
let pss = 0;
for (const pid of seen) {
  const status = readOr(`/proc/${pid}/status`);
  if (status === undefined) continue;
  n++;
  rss += kib(status, 'VmRSS');
  pss += kib(readOr(`/proc/${pid}/smaps_rollup`), 'Pss');
}
console.log(`${n} ${rss} ${pss}`);
