/**
 * DESIGN invariant 1, tested the hard way: clients send messages over several connections and
 * record every 250 with its queue id; the server process is SIGKILLed at random moments and
 * restarted, several rounds; at the end every acknowledged message is in its Maildir exactly
 * once or more (duplicates are reported, never losses). Bounded in rounds and time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Raw } from '../receiver/harness.js';
import { freePort } from '../helpers/proc.js';

const here = dirname(fileURLToPath(import.meta.url));
// The built CLI, from dist/test/integration (compiled) or test/integration (tsx).
const BIN = here.includes('/dist/')
  ? join(here, '../../src/cli/main.js')
  : join(here, '../../dist/src/cli/main.js');

async function startServer(config: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', '--config', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d) => (err += d));
  const deadline = Date.now() + 15000;
  for (;;) {
    try {
      const c = await Raw.connect(port);
      const g = await c.reply(2000);
      c.end();
      if (g.startsWith('220')) return child;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`server did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One client: messages in a loop until the connection fails; returns tokens acknowledged with 250. */
async function client(port: number, prefix: string, acked: Map<string, string>): Promise<void> {
  let c: Raw;
  try {
    c = await Raw.connect(port);
    if (!(await c.reply(3000)).startsWith('220')) return;
    if (!(await c.cmd('EHLO crash.test')).startsWith('250')) return;
    for (let i = 0; i < 10000; i++) {
      const token = `${prefix}-${i}`;
      c.send(`MAIL FROM:<load@crash.test>\r\nRCPT TO:<user${i % 3}@example.test>\r\nDATA\r\n`);
      const r1 = await c.reply(3000);
      const r2 = await c.reply(3000);
      const r3 = await c.reply(3000);
      if (!r1.startsWith('250') || !r2.startsWith('250') || !r3.startsWith('354')) {
        if (process.env.CRASH_DEBUG) console.error(prefix, r1, r2, r3);
        return;
      }
      c.send(
        `Subject: ${token}\r\nX-Token: ${token}\r\n\r\n${'x'.repeat(50).concat('\r\n').repeat(40)}\r\n.\r\n`,
      );
      const r = await c.reply(3000);
      const m = /^250 2\.0\.0 Ok: queued as (\S+)/.exec(r);
      if (!m) {
        if (process.env.CRASH_DEBUG) console.error(prefix, r);
        return;
      }
      acked.set(token, m[1] as string);
    }
  } catch (err) {
    if (process.env.CRASH_DEBUG) console.error(prefix, err);
  }
}

function tokensInMaildirs(mailRoot: string): Map<string, number> {
  const seen = new Map<string, number>();
  if (!existsSync(mailRoot)) return seen;
  for (const user of readdirSync(mailRoot)) {
    const dir = join(mailRoot, user, 'new');
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) {
      const m = /X-Token: (\S+)/.exec(readFileSync(join(dir, f), 'latin1'));
      if (m) seen.set(m[1] as string, (seen.get(m[1] as string) ?? 0) + 1);
    }
  }
  return seen;
}

test('kill -9 at random moments loses no acknowledged message', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrymail-crash-'));
  const port = await freePort();
  const config = join(dir, 'ferrymail.toml');
  writeFileSync(
    config,
    `hostname = "crash.example.test"\ndata_dir = "var"\n[[listeners]]\naddress = "127.0.0.1:${port}"\nmode = "mx"\n[domains]\nlocal = ["example.test"]\n[log]\nlevel = "error"\n`,
  );
  const acked = new Map<string, string>();
  const rounds = 4;
  try {
    for (let round = 0; round < rounds; round++) {
      const child = await startServer(config, port);
      const clients = Array.from({ length: 4 }, (_, k) => client(port, `r${round}c${k}`, acked));
      await new Promise((r) => setTimeout(r, 300 + Math.floor(Math.random() * 700)));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      await Promise.all(clients);
    }
    // Final run: let the queue drain into the Maildirs.
    const child = await startServer(config, port);
    const mailRoot = join(dir, 'var/mail/example.test');
    const deadline = Date.now() + 30_000;
    let seen = tokensInMaildirs(mailRoot);
    while ([...acked.keys()].some((k) => !seen.has(k)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      seen = tokensInMaildirs(mailRoot);
    }
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    const lost = [...acked.keys()].filter((k) => !seen.has(k));
    const dups = [...seen.values()].filter((n) => n > 1).length;
    t.diagnostic(
      `acknowledged ${acked.size}, delivered ${seen.size} distinct, lost ${lost.length}, duplicated ${dups}`,
    );
    assert.ok(acked.size > 20, `the load ran (acknowledged ${acked.size})`);
    assert.deepEqual(lost, [], 'no acknowledged message is lost');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
