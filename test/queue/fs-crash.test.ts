/**
 * DESIGN invariant 1 under kill -9: a child process writes to the queue and prints what was
 * acknowledged; after SIGKILL at an arbitrary moment, reopening must show every acknowledged
 * change, lazy ones (`{ durable: false }`) included: they are written before they are acknowledged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FsQueueStore } from '../../src/queue/fs-store.js';
import { bodyBytes, tempDir } from './fixtures/helpers.js';

const here = import.meta.url;
const tsMode = here.endsWith('.ts');
const child = fileURLToPath(new URL(`./fixtures/crash-writer.${tsMode ? 'ts' : 'js'}`, here));

/** Runs the writer until it has acknowledged something, lets it go on for `runMs`, then SIGKILLs it. */
async function runAndKill(dir: string, runMs: number): Promise<string[]> {
  const args = tsMode ? ['--import', 'tsx', child, dir] : [child, dir];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  // 'close', not 'exit': lines still in the pipe when the child dies arrive after 'exit'.
  const exited = new Promise<void>((resolve) => proc.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const giveUp = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the writer acknowledged nothing in time: ${err}`));
    }, 15_000);
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) {
        clearTimeout(giveUp);
        resolve();
      }
    });
    proc.on('exit', () => {
      clearTimeout(giveUp);
      reject(new Error(`the writer exited early: ${err}`));
    });
  });
  await new Promise((r) => setTimeout(r, runMs));
  proc.kill('SIGKILL');
  await exited;
  // Only whole lines were acknowledged before the kill.
  return out.slice(0, out.lastIndexOf('\n')).split('\n');
}

test('after SIGKILL at a random moment every acknowledged change is there', { timeout: 60_000 }, async () => {
  const t = await tempDir();
  try {
    const dir = join(t.dir, 'queue');
    const seen = new Map<string, Set<string>>();
    for (let round = 0; round < 3; round++) {
      const lines = await runAndKill(dir, 100 + Math.floor(Math.random() * 400));
      for (const line of lines) {
        const [kind, id] = line.split(' ') as [string, string];
        if (!seen.has(id)) seen.set(id, new Set());
        seen.get(id)!.add(kind);
      }
      const store = new FsQueueStore(dir);
      await store.open();
      assert.deepEqual(store.warnings, []);
      let checked = 0;
      for (const [id, kinds] of seen) {
        const m = await store.get(id);
        if (kinds.has('R') || kinds.has('X')) {
          assert.equal(m, null, `${id} was removed`);
          continue;
        }
        if (kinds.has('r') || kinds.has('x')) continue; // a removal was asked for: either outcome is right
        assert.ok(m, `acknowledged ${id} is missing after round ${round}`);
        if (kinds.has('U')) assert.equal(m.recipients[1]!.attempts, 1, `update of ${id} is missing`);
        // Lazy changes are only exposed to a system crash: a killed process keeps them.
        if (kinds.has('L')) assert.equal(m.recipients[0]!.attempts, 2, `lazy update of ${id} is missing`);
        if (checked++ < 50) assert.deepEqual(await store.readMessage(id), bodyBytes(id, m.size));
      }
      assert.ok(seen.size > 0);
      await store.close();
    }
  } finally {
    await t.cleanup();
  }
});
