#!/usr/bin/env node
// Runs the compiled tests with node's test runner and ends with one plain count line
// ("N passed, N failed, N skipped") so CI and people read the same summary.
// Usage: node scripts/run-tests.mjs [unit|interop|all]   (default: all but interop when not installed)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const which = process.argv[2] ?? 'all';
const root = 'dist/test';
function walk(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
let files = walk(root).sort();
if (which === 'unit') files = files.filter((f) => !f.includes('/interop/') && !f.includes('/integration/'));
else if (which === 'interop') files = files.filter((f) => f.includes('/interop/'));
if (files.length === 0) {
  console.error('no test files found under ' + root);
  process.exit(1);
}
const tapDir = mkdtempSync(join(tmpdir(), 'ferrymail-tests-'));
const tap = join(tapDir, 'out.tap');
const r = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-concurrency=2',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tap}`,
    ...files,
  ],
  { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, FERRYMAIL_TEST: '1' } },
);
const text = readFileSync(tap, 'utf8');
rmSync(tapDir, { recursive: true, force: true });
const num = (k) => Number((new RegExp(`^# ${k} (\\d+)$`, 'm').exec(text) ?? [])[1] ?? 0);
const passed = num('pass');
const failed = num('fail') + num('cancelled');
const skipped = num('skipped') + num('todo');
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(r.status === 0 && failed === 0 && passed > 0 ? 0 : 1);
