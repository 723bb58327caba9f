import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// The CLI as a child process: src/cli/main.ts through tsx when the tests run as TypeScript, the compiled
// dist/src/cli/main.js when they run from dist/.
const here = dirname(fileURLToPath(import.meta.url));
const fromSource = import.meta.url.endsWith('.ts');
const mainFile = join(here, '..', '..', 'src', 'cli', fromSource ? 'main.ts' : 'main.js');

function repoRoot(): string {
  let dir = here;
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}
const nodeArgs = fromSource
  ? ['--import', pathToFileURL(join(repoRoot(), 'node_modules', 'tsx', 'dist', 'loader.mjs')).href]
  : [];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe('ferrymail as a child process', () => {
  let dir = '';
  const run = (args: string[], opts: { input?: string; script?: string } = {}): Run => {
    const r = spawnSync(process.execPath, [...nodeArgs, opts.script ?? mainFile, ...args], {
      cwd: dir,
      input: opts.input ?? '',
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, FERRYMAIL_CONFIG: '', LOGNAME: 'tester' },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fm-cli-'));
    await writeFile(join(dir, 'bad.toml'), '[[listeners]]\naddress = "127.0.0.1:2525"\nmode = "smpt"\n');
    await writeFile(
      join(dir, 'good.toml'),
      'hostname = "mx.example.test"\ndata_dir = "spool"\n[domains]\nlocal = ["example.test"]\n',
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('check-config -c bad.toml: exit 78 and the key to fix', () => {
    const r = run(['check-config', '-c', 'bad.toml']);
    assert.equal(r.status, 78);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      'bad.toml: listeners[0].mode: expected one of "mx", "submission", "submissions", found "smpt"\n',
    );
  });

  it('check-config --config good.toml: exit 0 and a summary', () => {
    const r = run(['check-config', '--config', 'good.toml']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^good\.toml: OK\n {2}hostname {3}mx\.example\.test\n/);
    assert.match(
      r.stdout,
      new RegExp(`data_dir   ${join(dir, 'spool').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`),
    );
  });

  it('usage errors exit 64; help and version exit 0', () => {
    const bad = run(['frobnicate']);
    assert.equal(bad.status, 64);
    assert.equal(bad.stderr, 'ferrymail: unknown command "frobnicate" (try ferrymail help)\n');
    const none = run([]);
    assert.equal(none.status, 64);
    assert.match(none.stderr, /^Usage: ferrymail <command>/);
    const help = run(['queue', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage: ferrymail queue/);
    const v = run(['version']);
    assert.equal(v.status, 0);
    assert.match(v.stdout, /^ferrymail \d+\.\d+\.\d+\n$/);
  });

  it('queue show of an unknown id with no server running: exit 1', () => {
    const r = run(['queue', 'show', 'NOSUCHID', '-c', 'good.toml']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'queue: no message with id NOSUCHID\n');
  });

  it('sendmail -t -oi queues into the pickup folder while no server runs', async () => {
    const r = run(['sendmail', '-c', 'good.toml', '-t', '-oi', '-f', 'me@example.test'], {
      input: 'To: you@example.test\nBcc: hidden@example.test\nSubject: hi\n\nline\n.\nafter the dot\n',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    const newDir = join(dir, 'spool', 'pickup', 'new');
    const [name] = await readdir(newDir);
    assert.ok(name);
    const text = await readFile(join(newDir, name), 'utf8');
    await rm(join(newDir, name));
    const [head, ...rest] = text.split('\n');
    assert.deepEqual(JSON.parse(head ?? '').recipients, ['you@example.test', 'hidden@example.test']);
    assert.match(rest.join('\n'), /\r\n\r\nline\r\n\.\r\nafter the dot\r\n$/);
    assert.doesNotMatch(text, /Bcc:/);
  });

  it('invoked through a link named sendmail, it is sendmail (no recipients: exit 64)', async () => {
    const link = join(dir, 'sendmail');
    await symlink(mainFile, link);
    const r = run(['-C', 'good.toml'], { script: link, input: 'Subject: x\n\nhi\n' });
    assert.equal(r.status, 64);
    assert.equal(r.stderr, 'sendmail: no recipients given (use -t or name them as arguments)\n');
  });
});
