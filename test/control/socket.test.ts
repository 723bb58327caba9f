import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient, tryConnectControl } from '../../src/control/client.js';
import { ControlError, type ControlHandlers } from '../../src/control/protocol.js';
import { startControlServer, type ControlServer } from '../../src/control/server.js';
import type { QueuedMessage } from '../../src/queue/types.js';

const msg = (id: string): QueuedMessage => ({
  envelope: {
    id,
    sender: 'a@x.test',
    recipients: [{ address: 'b@y.test' }],
    receivedAt: 1,
    body: '7BIT',
    smtputf8: false,
  },
  recipients: [{ index: 0, status: 'pending', attempts: 1, nextAttemptAt: 2, lastReply: '451 4.7.1 later' }],
  size: 10,
});

function fakeHandlers(): ControlHandlers & { calls: string[] } {
  const store = new Map([
    ['A', msg('A')],
    ['B', msg('B')],
  ]);
  const calls: string[] = [];
  return {
    calls,
    list: async () => [...store.values()],
    show: async (id) => store.get(id),
    flush: async () => {
      calls.push('flush');
      return store.size;
    },
    remove: async (ids) => {
      const removed = ids.filter((id) => store.delete(id));
      return { removed, missing: ids.filter((id) => !removed.includes(id)) };
    },
    status: () => ({ version: 'test', queued: store.size }),
  };
}

describe('control socket', () => {
  let dir = '';
  let path = '';
  let server: ControlServer | undefined;
  let client: ControlClient | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fm-ctl-'));
    path = join(dir, 'control.sock');
  });
  afterEach(async () => {
    client?.close();
    client = undefined;
    await server?.close();
    server = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('round trip of every request', async () => {
    const h = fakeHandlers();
    server = await startControlServer(path, h);
    client = await ControlClient.connect(path);
    assert.deepEqual(
      (await client.list()).map((m) => m.envelope.id),
      ['A', 'B'],
    );
    assert.deepEqual(await client.show('A'), msg('A'));
    assert.equal(await client.show('nope'), undefined);
    assert.equal(await client.flush(), 2);
    assert.deepEqual(await client.remove(['A', 'Z']), { removed: ['A'], missing: ['Z'] });
    assert.deepEqual(await client.status(), { version: 'test', queued: 1 });
    assert.deepEqual(h.calls, ['flush']);
  });

  it('requests sent together are answered, each to its own id', async () => {
    server = await startControlServer(path, fakeHandlers());
    client = await ControlClient.connect(path);
    const [a, b, c] = await Promise.all([client.show('A'), client.flush(), client.show('B')]);
    assert.equal(a?.envelope.id, 'A');
    assert.equal(b, 2);
    assert.equal(c?.envelope.id, 'B');
  });

  it('the socket is mode 0600', async () => {
    server = await startControlServer(path, fakeHandlers());
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  it('a handler error comes back with its code; the connection stays usable', async () => {
    const h = fakeHandlers();
    h.flush = async () => {
      throw Object.assign(new Error('queue is closed'), { code: 'QUEUE_CLOSED' });
    };
    server = await startControlServer(path, h);
    client = await ControlClient.connect(path);
    await assert.rejects(
      client.flush(),
      (e: unknown) =>
        e instanceof ControlError && e.code === 'QUEUE_CLOSED' && e.message === 'queue is closed',
    );
    assert.equal((await client.list()).length, 2);
  });

  it('a malformed line gets a CONTROL_PROTOCOL answer', async () => {
    server = await startControlServer(path, fakeHandlers());
    const raw = net.connect(path);
    const answer = await new Promise<string>((ok) => {
      raw.once('data', (d) => ok(d.toString()));
      raw.write('{"id":7,"op":"explode"}\n');
    });
    raw.destroy();
    assert.deepEqual(JSON.parse(answer), {
      id: 7,
      ok: false,
      error: { code: 'CONTROL_PROTOCOL', message: 'unknown op "explode"' },
    });
  });

  it('not running: no socket file (ENOENT)', async () => {
    await assert.rejects(
      ControlClient.connect(path),
      (e: unknown) => e instanceof ControlError && e.code === 'CONTROL_NOT_RUNNING',
    );
    assert.equal(await tryConnectControl(path), undefined);
  });

  it('not running: a stale socket left by a killed server (ECONNREFUSED), which the next server replaces', async () => {
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
      ],
      { timeout: 10_000 },
    );
    assert.equal(r.signal, 'SIGKILL');
    assert.ok((await stat(path)).isSocket());
    assert.equal(await tryConnectControl(path), undefined);
    server = await startControlServer(path, fakeHandlers());
    client = await ControlClient.connect(path);
    assert.equal(await client.flush(), 2);
  });

  it('a live socket is not taken over; a non-socket file is not removed', async () => {
    server = await startControlServer(path, fakeHandlers());
    await assert.rejects(
      startControlServer(path, fakeHandlers()),
      (e: unknown) => e instanceof ControlError && e.code === 'CONTROL_IN_USE',
    );
    const other = join(dir, 'file');
    await writeFile(other, 'x');
    await assert.rejects(startControlServer(other, fakeHandlers()), /is not a socket/);
  });

  it('a path too long for a unix socket: RangeError for the server, "not running" for the client', async () => {
    const long = join(dir, 'x'.repeat(120));
    await assert.rejects(startControlServer(long, fakeHandlers()), RangeError);
    assert.equal(await tryConnectControl(long), undefined);
  });

  it('close() ends open connections and removes the socket', async () => {
    server = await startControlServer(path, fakeHandlers());
    client = await ControlClient.connect(path);
    await server.close();
    server = undefined;
    await assert.rejects(client.list(), ControlError);
    assert.equal(await tryConnectControl(path), undefined);
  });
});
