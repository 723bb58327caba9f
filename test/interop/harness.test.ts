/**
 * The interop harness itself, with no real peer: startFerrymail against stub servers (start, greet
 * wait, config rewriting, stop/kill9/restart, early exit and timeout errors), the raw dialogue helper
 * against scripted sockets (multi-line, pipelined, malformed, STARTTLS), waitForFile, free ports.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'smol-toml';
import {
  FerrymailStartError,
  ferrymailSkip,
  globFiles,
  startFerrymail,
  waitForFile,
} from '../helpers/ferrymail.js';
import { freePorts, isAlive, makeTempDir, removeDir } from '../helpers/proc.js';
import { dialog, rawSession } from '../helpers/smtp-client.js';
import { interopSkip, isCi, missingPackages, skipReason } from '../helpers/interop.js';
import { makeSelfSignedCert } from '../helpers/tls.js';

/** A stand-in for `ferrymail serve`: greets 220 on every listener of the TOML config it is given. */
const STUB = `
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
const i = process.argv.indexOf('--config');
const text = readFileSync(process.argv[i + 1], 'utf8');
if (process.env.STUB_MODE === 'crash') { console.error('config error: stub refuses'); process.exit(3); }
const addrs = [...text.matchAll(/address = "([^"]+):(\\d+)"/g)].map((m) => [m[1], Number(m[2])]);
const modes = [...text.matchAll(/mode = "([^"]+)"/g)].map((m) => m[1]);
const cert = /cert = "([^"]+)"/.exec(text)?.[1];
const key = /key = "([^"]+)"/.exec(text)?.[1];
const dataDir = /data_dir = "([^"]+)"/.exec(text)[1];
mkdirSync(dataDir, { recursive: true });
writeFileSync(dataDir + '/started-' + process.pid, '');
const greet = (s) => { if (process.env.STUB_MODE !== 'mute') s.write('220 stub ESMTP\\r\\n'); s.on('error', () => {}); s.on('data', (d) => { if (/QUIT/i.test(String(d))) s.end('221 bye\\r\\n'); }); };
addrs.forEach(([host, port], n) => {
  const srv = modes[n] === 'submissions'
    ? tls.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, greet)
    : net.createServer(greet);
  srv.listen(port, host);
});
console.log('stub listening');
process.on('SIGTERM', () => { console.log('stub stopping'); process.exit(0); });
`;

describe('startFerrymail with a stub server', () => {
  let dir: string;
  let bin: string;
  before(async () => {
    dir = await makeTempDir('ferrymail-harness-');
    bin = path.join(dir, 'stub.mjs');
    await writeFile(bin, STUB);
  });
  after(async () => {
    await removeDir(dir);
  });

  it('fills ports and data_dir, waits for the greeting, stops, restarts after kill9', async () => {
    const fm = await startFerrymail({
      bin,
      config: {
        listeners: [
          { address: '127.0.0.1:0', mode: 'mx' },
          { address: '127.0.0.1:0', mode: 'submission' },
        ],
        domains: { local: ['fm.test'] },
      },
    });
    try {
      const cfg = parse(await readFile(fm.configPath, 'utf8')) as Record<string, unknown>;
      assert.equal(cfg['data_dir'], fm.dataDir);
      assert.equal(cfg['hostname'], 'ferrymail.test');
      assert.deepEqual({ ...(cfg['domains'] as object) }, { local: ['fm.test'] });
      assert.equal(fm.listeners.length, 2);
      assert.notEqual(fm.portOf('mx'), fm.portOf('submission'));
      assert.throws(() => fm.portOf('submissions'), RangeError);
      assert.equal(fm.maildir('FM.test', 'Bob'), path.join(fm.dataDir, 'mail', 'fm.test', 'bob'));
      await dialog(fm.portOf('submission'), [
        [null, /^220 stub/],
        ['QUIT', /^221/],
      ]);
      assert.match(fm.logs(), /stub listening/);

      const pid = fm.pid();
      assert.ok(pid !== undefined && isAlive(pid));
      await fm.kill9();
      assert.equal(fm.pid(), undefined);
      await fm.restart();
      assert.notEqual(fm.pid(), pid);
      assert.equal((await globFiles(fm.dataDir)).length, 2, 'both runs used the same data_dir');
      assert.equal(await fm.stop(), 0);
      assert.match(fm.logs(), /stub stopping/);
    } finally {
      await fm.close();
    }
    await assert.rejects(readFile(fm.configPath), { code: 'ENOENT' });
  });

  it('the uid option runs the server as that user, owning its data dir', async () => {
    const own = await makeTempDir('ferrymail-harness-uid-', 0o755);
    try {
      const ownBin = path.join(own, 'stub.mjs');
      await writeFile(ownBin, STUB, { mode: 0o644 });
      const fm = await startFerrymail({ bin: ownBin, uid: 65534, gid: 65534 });
      try {
        const [marker] = await globFiles(fm.dataDir);
        assert.equal((await stat(marker ?? '')).uid, 65534);
      } finally {
        await fm.close();
      }
    } finally {
      await removeDir(own);
    }
  });

  it('string configs get {{PORTn}} and {{DATA_DIR}} filled', async () => {
    const fm = await startFerrymail({
      bin,
      config: 'data_dir = "{{DATA_DIR}}"\n[[listeners]]\naddress = "127.0.0.1:{{PORT0}}"\nmode = "mx"\n',
    });
    try {
      const text = await readFile(fm.configPath, 'utf8');
      assert.doesNotMatch(text, /\{\{/);
      assert.ok(fm.port > 0);
      assert.equal(fm.dataDir, path.join(fm.dir, 'data'));
    } finally {
      await fm.close();
    }
  });

  it('implicit-TLS listeners are probed over TLS', { skip: interopSkip('openssl') }, async () => {
    const fm = await startFerrymail({
      bin,
      tls: true,
      config: { listeners: [{ address: '127.0.0.1:0', mode: 'submissions' }] },
    });
    try {
      await dialog(fm.port, [[null, /^220 /]], { tls: true });
    } finally {
      await fm.close();
    }
  });

  it('a server that exits during start is a FerrymailStartError carrying its output', async () => {
    await assert.rejects(startFerrymail({ bin, env: { STUB_MODE: 'crash' } }), (e: unknown) => {
      assert.ok(e instanceof FerrymailStartError);
      assert.equal(e.code, 'FERRYMAIL_START');
      assert.match(e.message, /exited with code 3/);
      assert.match(e.logs, /stub refuses/);
      return true;
    });
  });

  it('a server that never greets times out within the bound', async () => {
    const t0 = Date.now();
    await assert.rejects(
      startFerrymail({ bin, env: { STUB_MODE: 'mute' }, startTimeoutMs: 1500 }),
      FerrymailStartError,
    );
    assert.ok(Date.now() - t0 < 8000);
  });

  it('ferrymailSkip gives a reason for a missing build or a server that will not start, none for one that does', async () => {
    assert.match((await ferrymailSkip(path.join(dir, 'nope.js'))) ?? '', /is not built/);
    const crash = path.join(dir, 'crash.mjs');
    await writeFile(crash, "console.error('boom: no such key listeners.x'); process.exit(2);\n");
    assert.match(
      (await ferrymailSkip(crash)) ?? '',
      /does not start yet: .*exited with code 2.*boom: no such key/,
    );
    assert.equal(await ferrymailSkip(bin), undefined);
  });

  it('a missing build is reported, not crashed on', async () => {
    await assert.rejects(startFerrymail({ bin: path.join(dir, 'nope.js') }), /is not built/);
  });
});

/** A scripted server: writes `script` on connect, then echoes nothing. */
async function scripted(
  onConnect: (s: net.Socket) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  const open = new Set<net.Socket>();
  const server = net.createServer((s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => undefined);
    onConnect(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('raw SMTP dialogue helper', () => {
  it('reads multi-line replies split across packets, and pipelined replies in order', async () => {
    const srv = await scripted((s) => {
      s.write('220-first\r\n220');
      setTimeout(() => s.write(' second\r\n'), 20);
      s.on('data', (d) => {
        if (String(d).startsWith('EHLO')) s.write('250-a\r\n250-PIPELINING\r\n250 SIZE\r\n');
        else if (String(d).startsWith('MAIL')) s.write('250 2.1.0 ok\r\n550 5.1.1 no\r\n354 go\r\n');
      });
    });
    try {
      const replies = await dialog(srv.port, [
        [null, /^220-first\n220 second$/],
        ['EHLO me', /PIPELINING/],
        ['MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n', /^250 2\.1\.0 ok$/],
        [null, /^550 /],
        [null, /^354 /],
      ]);
      assert.deepEqual(replies[0]?.lines, ['first', 'second']);
      assert.deepEqual(replies[1], {
        code: 250,
        lines: ['a', 'PIPELINING', 'SIZE'],
        raw: '250-a\n250-PIPELINING\n250 SIZE',
      });
    } finally {
      await srv.close();
    }
  });

  it('rejects malformed lines, a changing code, a close and a timeout with the bytes seen', async () => {
    const lines = ['hello there\r\n', '250-a\r\n251 b\r\n', '', '220-partial\r\n'];
    let n = 0;
    const srv = await scripted((s) => {
      const what = lines[n++] ?? '';
      if (what === '') s.end();
      else s.write(what);
    });
    try {
      await assert.rejects(dialog(srv.port, [[null, /./]]), /malformed reply line "hello there"/);
      await assert.rejects(dialog(srv.port, [[null, /./]]), /code changed/);
      await assert.rejects(dialog(srv.port, [[null, /./]]), /closed before a complete reply/);
      const s = await rawSession(srv.port);
      try {
        await assert.rejects(s.readReply(200), /no complete reply within 200 ms \(got "220-partial\\r\\n"\)/);
      } finally {
        s.close();
      }
    } finally {
      await srv.close();
    }
  });

  it('a failed expectation names the step and the reply', async () => {
    const srv = await scripted((s) => s.write('554 go away\r\n'));
    try {
      await assert.rejects(
        dialog(srv.port, [[null, /^220/]]),
        /dialog step 0 \(read only\): reply "554 go away"/,
      );
    } finally {
      await srv.close();
    }
  });

  it('upgrades with startTls and keeps talking', { skip: interopSkip('openssl') }, async () => {
    const cert = await makeSelfSignedCert();
    const ctx = tls.createSecureContext({ cert: cert.cert, key: cert.key });
    const srv = await scripted((s) => {
      s.write('220 ready\r\n');
      s.once('data', () => {
        s.write('220 go ahead\r\n', () => {
          const t = new tls.TLSSocket(s, { isServer: true, secureContext: ctx });
          t.on('error', () => undefined);
          t.on('data', (d) => {
            if (String(d).startsWith('EHLO')) t.write('250 secure\r\n');
          });
        });
      });
    });
    const s = await rawSession(srv.port);
    try {
      assert.equal((await s.readReply()).code, 220);
      assert.equal((await s.command('STARTTLS')).code, 220);
      await s.startTls();
      assert.deepEqual(await s.command('EHLO me'), { code: 250, lines: ['secure'], raw: '250 secure' });
    } finally {
      s.close();
      await srv.close();
      await removeDir(cert.dir);
    }
  });
});

describe('small harness pieces', () => {
  it('freePorts hands out distinct bindable ports', async () => {
    const ports = await freePorts(5);
    assert.equal(new Set(ports).size, 5);
    await assert.rejects(freePorts(0), RangeError);
  });

  it('waitForFile matches * segments and waits for the count', async () => {
    const dir = await makeTempDir('ferrymail-glob-');
    try {
      const later = (async () => {
        for (const u of ['a', 'b']) {
          await mkdir(path.join(dir, 'mail', 'x.test', u, 'new'), { recursive: true });
          await writeFile(path.join(dir, 'mail', 'x.test', u, 'new', '1.msg'), 'm');
        }
      })();
      const files = await waitForFile(path.join(dir, 'mail', '*', '*', 'new'), 2, 5000);
      await later;
      assert.deepEqual(
        files.map((f) => path.relative(dir, f)),
        ['mail/x.test/a/new/1.msg', 'mail/x.test/b/new/1.msg'],
      );
      await assert.rejects(waitForFile(path.join(dir, 'nothing'), 1, 150), /timed out after 150 ms/);
    } finally {
      await removeDir(dir);
    }
  });
});

describe('interop skip policy', () => {
  it('skips for a missing package outside CI, never under CI', () => {
    assert.match(skipReason(['postfix'], {}) ?? '', /not installed: postfix/);
    assert.match(skipReason(['postfix', 'swaks'], { CI: 'false' }) ?? '', /postfix, swaks/);
    assert.equal(skipReason(['postfix'], { CI: 'true' }), undefined);
    assert.equal(skipReason(['postfix'], { CI: '1' }), undefined);
    assert.equal(skipReason([], {}), undefined);
  });

  it('reads CI the way CI services set it', () => {
    assert.equal(isCi({ CI: 'true' }), true);
    assert.equal(isCi({ CI: '' }), false);
    assert.equal(isCi({ CI: '0' }), false);
    assert.equal(isCi({}), false);
  });

  it('probes packages by their files', () => {
    const missing = missingPackages([
      'postfix',
      'swaks',
      'dovecot-imapd',
      'dovecot-lmtpd',
      'openssl',
      'python3',
    ]);
    assert.ok(Array.isArray(missing));
    assert.ok(missing.every((m) => typeof m === 'string'));
  });
});
