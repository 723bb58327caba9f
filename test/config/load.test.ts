import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/config/errors.js';
import {
  defaultConfig,
  EMBEDDED_CONFIG_NAME,
  loadConfig,
  parseConfig,
  resolveConfigPath,
} from '../../src/config/load.js';

const BASE = '/srv/mta';
const parse = (text: string, env: Record<string, string> = {}) =>
  parseConfig(text, 'ferrymail.toml', BASE, { hostname: 'mx.test', env });

/** The message of the ConfigError `text` raises. */
function errorOf(text: string, env: Record<string, string> = {}): ConfigError {
  try {
    parse(text, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'CONFIG_INVALID');
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('parseConfig defaults', () => {
  it('an empty file gives the embedded default', () => {
    const c = parse('');
    assert.equal(c.hostname, 'mx.test');
    assert.equal(c.data_dir, '/srv/mta/var');
    assert.deepEqual(c.listeners, [
      {
        address: '127.0.0.1:2525',
        host: '127.0.0.1',
        port: 2525,
        mode: 'mx',
        auth_required: false,
        allow_insecure_auth: false,
      },
    ]);
    assert.deepEqual(c.domains, { local: ['localhost'], relay: [] });
    assert.deepEqual(c.relay.networks, ['127.0.0.1/32', '::1/128']);
    assert.deepEqual(c.routes, {});
    assert.deepEqual(c.dns.servers, []);
    assert.deepEqual(c.users, { list: [], case_sensitive: false, detail_separator: '+' });
    assert.deepEqual(c.aliases, {});
    assert.deepEqual(c.auth.users, {});
    assert.equal(c.limits.max_message_size, 26214400);
    assert.equal(c.limits.command_timeout, 300_000);
    assert.equal(c.limits.line_length, 1000);
    assert.equal(c.limits.command_line_length, 512);
    assert.equal(c.queue.max_age, 5 * 86_400_000);
    assert.equal(c.queue.delay_warning, 4 * 3_600_000);
    assert.equal(c.queue.retry[0], 60_000);
    assert.equal(c.log.level, 'info');
    assert.equal(c.log.format, undefined);
    assert.equal(c.tls, undefined);
    assert.equal(c.metrics, undefined);
    assert.equal(c.vrfy, false);
    assert.equal(c.delivery.mx_port, 25);
  });

  it('the embedded default resolves data_dir against the current folder', () => {
    const c = defaultConfig({ cwd: '/some/where', hostname: 'h.test' });
    assert.equal(c.data_dir, '/some/where/var');
  });

  it('a machine name that is not a host name falls back to localhost', () => {
    assert.equal(parseConfig('', 'f', '/', { hostname: 'my box' }).hostname, 'localhost');
  });
});

describe('parseConfig values', () => {
  it('reads the contract keys of DESIGN.md', () => {
    const c = parse(
      `
hostname = "mx.example.test"
data_dir = "spool"
[[listeners]]
address = "[::1]:2525"
mode = "submission"
[[listeners]]
address = "0.0.0.0:25"
[domains]
local = ["Example.TEST", "bücher.example"]
relay = ["relay.test"]
[relay]
networks = ["10.0.0.0/8", "192.0.2.1"]
[routes]
"relay.test" = "127.0.0.1:2600"
"*" = { host = "smart.example", port = 587, tls = "require", auth = { user = "u", password = "env:SMART_PW" } }
"lmtp.test" = "lmtp:/run/dovecot/lmtp"
[dns]
servers = ["127.0.0.1:5353", "::1"]
[limits]
max_message_size = "10MiB"
command_timeout = "90s"
[queue]
retry = ["30s", "1h30m"]
delay_warning = "0"
[metrics]
address = "127.0.0.1:9025"
`,
      { SMART_PW: 'sekret' },
    );
    assert.equal(c.hostname, 'mx.example.test');
    assert.equal(c.data_dir, '/srv/mta/spool');
    assert.deepEqual(c.listeners[0], {
      address: '[::1]:2525',
      host: '::1',
      port: 2525,
      mode: 'submission',
      auth_required: true,
      allow_insecure_auth: false,
    });
    assert.equal(c.listeners[1]?.mode, 'mx');
    assert.equal(c.listeners[1]?.auth_required, false);
    assert.deepEqual(c.domains.local, ['example.test', 'xn--bcher-kva.example']);
    assert.deepEqual(c.relay.networks, ['10.0.0.0/8', '192.0.2.1/32']);
    assert.equal(c.routes['relay.test'], '127.0.0.1:2600');
    assert.deepEqual(c.routes['*'], {
      host: 'smart.example',
      port: 587,
      tls: 'require',
      auth: { user: 'u', password: 'sekret' },
    });
    assert.equal(c.limits.max_message_size, 10 * 1024 * 1024);
    assert.equal(c.limits.command_timeout, 90_000);
    assert.deepEqual(c.queue.retry, [30_000, 5_400_000]);
    assert.equal(c.queue.delay_warning, undefined);
    assert.deepEqual(c.metrics, { address: '127.0.0.1:9025', host: '127.0.0.1', port: 9025 });
  });

  it('aliases take a string or a list', () => {
    const c = parse('[aliases]\npostmaster = "alice"\nsales = ["bob", "carol@example.org"]\n');
    assert.deepEqual(c.aliases, { postmaster: 'alice', sales: ['bob', 'carol@example.org'] });
  });
});

describe('ConfigError messages', () => {
  it('unknown key: names it and suggests the close one', () => {
    const e = errorOf('hostnme = "x.test"\n');
    assert.equal(
      e.message,
      'ferrymail.toml: hostnme: unknown key at the top level; did you mean "hostname"?',
    );
  });

  it('unknown key in a section, and an unknown section', () => {
    const e = errorOf('[limits]\nmax_mesage_size = 5\n[limit]\n');
    assert.match(
      e.message,
      /limits\.max_mesage_size: unknown key in \[limits\]; did you mean "max_message_size"\?/,
    );
    assert.match(e.message, /limit: unknown key at the top level; did you mean "limits"\?/);
  });

  it('unknown key far from every known one gets no suggestion', () => {
    assert.equal(errorOf('zzzzzzzz = 1\n').message, 'ferrymail.toml: zzzzzzzz: unknown key at the top level');
  });

  it('wrong type: says what was expected and what was found', () => {
    assert.equal(
      errorOf('[limits]\nmax_recipients = "many"\n').message,
      'ferrymail.toml: limits.max_recipients: expected an integer of at least 1, found "many"',
    );
    assert.equal(
      errorOf('vrfy = "yes"\n').message,
      'ferrymail.toml: vrfy: expected true or false, found "yes"',
    );
    assert.equal(
      errorOf('[domains]\nlocal = "example.test"\n').message,
      'ferrymail.toml: domains.local: expected an array of strings, found "example.test"',
    );
    assert.equal(errorOf('domains = 5\n').message, 'ferrymail.toml: domains: expected a table, found 5');
  });

  it('bad duration and size', () => {
    assert.equal(
      errorOf('[limits]\ncommand_timeout = "5 minutes"\n').message,
      'ferrymail.toml: limits.command_timeout: expected a duration such as "30s", "5m", "4h" or "5d", found "5 minutes"',
    );
    assert.match(
      errorOf('[queue]\nretry = ["1m", "soon"]\n').message,
      /queue\.retry\[1\]: expected a duration/,
    );
    assert.match(errorOf('[queue]\nretry = []\n').message, /queue\.retry: expected at least 1 item/);
    assert.match(
      errorOf('[limits]\nmax_message_size = "big"\n').message,
      /limits\.max_message_size: expected a size in bytes/,
    );
    assert.match(errorOf('[limits]\ncommand_timeout = 300\n').message, /found 300$/);
  });

  it('bad listener address and mode, with the index in the path', () => {
    const e = errorOf(
      '[[listeners]]\naddress = "127.0.0.1:2525"\n[[listeners]]\naddress = "127.0.0.1"\nmode = "smtp"\n',
    );
    assert.deepEqual(e.message.split('\n'), [
      'ferrymail.toml: listeners[1].address: expected host:port such as "127.0.0.1:2525" or "[::1]:2525", found "127.0.0.1"',
      'ferrymail.toml: listeners[1].mode: expected one of "mx", "submission", "submissions", found "smtp"',
    ]);
    assert.match(
      errorOf('[[listeners]]\naddress = "127.0.0.1:99999"\n').message,
      /listeners\[0\]\.address: expected host:port/,
    );
    assert.match(
      errorOf('[[listeners]]\nmode = "mx"\n').message,
      /listeners\[0\]\.address: required key is missing/,
    );
    assert.match(errorOf('listeners = []\n').message, /listeners: expected at least 1 item/);
  });

  it('the same address twice', () => {
    const e = errorOf('[[listeners]]\naddress = "127.0.0.1:25"\n[[listeners]]\naddress = "127.0.0.1:25"\n');
    assert.equal(
      e.message,
      'ferrymail.toml: listeners[1].address: "127.0.0.1:25" is already used by listeners[0]',
    );
  });

  it('submissions without [tls]', () => {
    const e = errorOf('[[listeners]]\naddress = "127.0.0.1:465"\nmode = "submissions"\n');
    assert.equal(
      e.message,
      'ferrymail.toml: listeners[0].mode: "submissions" needs a [tls] section with cert and key',
    );
  });

  it('networks, domains, routes, dns servers', () => {
    assert.match(
      errorOf('[relay]\nnetworks = ["10.0.0.0/33"]\n').message,
      /relay\.networks\[0\]: expected a network/,
    );
    assert.match(
      errorOf('[domains]\nlocal = ["not a domain"]\n').message,
      /domains\.local\[0\]: expected a domain name/,
    );
    assert.match(
      errorOf('[routes]\n"x.test" = "a b"\n').message,
      /routes\."x\.test": expected a route such as/,
    );
    assert.match(
      errorOf('[routes]\n"bad key!" = "h:25"\n').message,
      /routes\."bad key!": expected the key to be "\*" or a domain/,
    );
    assert.match(
      errorOf('[routes]\n"x.test" = { host = "h", prt = 25 }\n').message,
      /routes\."x\.test"\.prt: unknown key .*did you mean "port"/,
    );
    assert.match(
      errorOf('[dns]\nservers = ["dns.google"]\n').message,
      /dns\.servers\[0\]: expected an IP address/,
    );
  });

  it('a "__proto__" key in a map is refused, not assigned', () => {
    assert.match(
      errorOf('[auth.users]\n"__proto__" = "x"\n').message,
      /auth\.users\.__proto__: expected the key to be anything but/,
    );
  });

  it('secrets that cannot be read name the key', () => {
    assert.equal(
      errorOf('[auth.users]\nalice = "env:NOPE_PW"\n').message,
      'ferrymail.toml: auth.users.alice: environment variable NOPE_PW is not set (from "env:NOPE_PW")',
    );
    assert.match(
      errorOf('[auth.users]\nbob = "file:missing.txt"\n').message,
      /auth\.users\.bob: cannot read \/srv\/mta\/missing\.txt: ENOENT/,
    );
    assert.match(
      errorOf('[auth.users]\nbob = "scrypt:nope"\n').message,
      /auth\.users\.bob: expected a hash from/,
    );
  });

  it('TOML syntax error: file, line and column', () => {
    const e = errorOf('hostname = "a.test"\n[limits]\nmax_message_size = \n');
    assert.equal(e.issues[0]?.line, 3);
    assert.match(e.message, /^ferrymail\.toml:3:\d+: TOML syntax error: /);
    assert.equal(e.message.split('\n').length, 1);
  });

  it('collects every problem, one line each', () => {
    const e = errorOf('vrfy = 1\nhostnam = "x"\n[log]\nlevel = "loud"\n');
    assert.equal(e.issues.length, 3);
    assert.equal(e.message.split('\n').length, 3);
  });
});

describe('loadConfig with files', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferrymail-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves relative paths against the config file folder', async () => {
    await mkdir(join(dir, 'etc'));
    await writeFile(join(dir, 'etc', 'cert.pem'), 'cert');
    await writeFile(join(dir, 'etc', 'key.pem'), 'key');
    await writeFile(join(dir, 'etc', 'pw'), 'hunter2\n');
    const file = join(dir, 'etc', 'ferrymail.toml');
    await writeFile(
      file,
      'data_dir = "../spool"\n[tls]\ncert = "cert.pem"\nkey = "key.pem"\n[auth.users]\nalice = "file:pw"\n',
    );
    const c = await loadConfig(file, { hostname: 'h.test' });
    assert.equal(c.data_dir, join(dir, 'spool'));
    assert.deepEqual(c.tls, { cert: join(dir, 'etc', 'cert.pem'), key: join(dir, 'etc', 'key.pem') });
    assert.equal(c.auth.users['alice'], 'hunter2');
  });

  it('a relative config path is taken from cwd', async () => {
    const c = await loadConfig('etc/ferrymail.toml', { cwd: dir, hostname: 'h.test' });
    assert.equal(c.data_dir, join(dir, 'spool'));
  });

  it('missing tls file: names the key and the file', async () => {
    const file = join(dir, 'missing-tls.toml');
    await writeFile(file, '[tls]\ncert = "nope.pem"\nkey = "etc/key.pem"\n');
    await assert.rejects(loadConfig(file, { hostname: 'h.test' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(
        err.message,
        `${file}: tls.cert: cannot read "${join(dir, 'nope.pem')}": no such file (nope.pem is missing)`,
      );
      return true;
    });
  });

  it(
    'unreadable tls file',
    { skip: process.getuid?.() === 0 ? 'root reads everything' : false },
    async () => {
      const key = join(dir, 'secret.pem');
      await writeFile(key, 'k');
      await chmod(key, 0);
      await writeFile(join(dir, 'unreadable.toml'), '[tls]\ncert = "etc/cert.pem"\nkey = "secret.pem"\n');
      await assert.rejects(
        loadConfig(join(dir, 'unreadable.toml')),
        /tls\.key: cannot read .*permission denied/,
      );
    },
  );

  it('a missing config file is a ConfigError naming it', async () => {
    await assert.rejects(loadConfig(join(dir, 'none.toml')), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, `${join(dir, 'none.toml')}: cannot read the config file: no such file`);
      return true;
    });
  });

  it('resolveConfigPath: flag, then $FERRYMAIL_CONFIG, then ./ferrymail.toml, then the embedded default', async () => {
    assert.equal(resolveConfigPath('x.toml', { cwd: dir, env: { FERRYMAIL_CONFIG: 'y.toml' } }), 'x.toml');
    assert.equal(resolveConfigPath(undefined, { cwd: dir, env: { FERRYMAIL_CONFIG: 'y.toml' } }), 'y.toml');
    assert.equal(resolveConfigPath(undefined, { cwd: dir, env: {} }), undefined);
    await writeFile(join(dir, 'ferrymail.toml'), '');
    assert.equal(resolveConfigPath(undefined, { cwd: dir, env: {} }), join(dir, 'ferrymail.toml'));
    const c = await loadConfig(undefined, { cwd: dir, hostname: 'h.test' });
    assert.equal(c.data_dir, join(dir, 'var'));
    assert.equal(EMBEDDED_CONFIG_NAME.length > 0, true);
  });
});
