/**
 * @module test/helpers/exim
 * A private Exim 4 instance as a second real test peer, wholly inside a temp dir: its own config,
 * spool, log files (`mainlog`, `paniclog`, `rejectlog`) and pid file, one SMTP port on 127.0.0.1, no
 * DNS, and a queue runner every second. The daemon runs in the foreground (`-bdf`) as a child of the
 * test process, in a process group of its own, so stop() ends it and its delivery processes.
 *
 * The binary is Debian's `exim4-daemon-light` unpacked with `dpkg -x` (not installed: exim4 and
 * postfix both provide mail-transport-agent and conflict); `.ci/run` puts it in
 * `/opt/ferrymail-interop/exim`. It needs the `Debian-exim` user (looked up at start-up even when
 * the config names another) and libidn12. Since its `-C` config is not in Exim's trusted list, Exim
 * drops root; it must then run as that very user, or the processes it re-executes for deliveries
 * (real uid not Exim's) log to stderr instead of `mainlog`. So every dir it writes, and the TLS key,
 * belong to Debian-exim (eximUser()); delivered mail too.
 *
 * Mail for `domain` goes into Maildirs `mailRoot/<domain>/<user>/` (user lowercased, as Exim routes
 * it); listed `mailboxes` get their own folder, other local parts land in `catchall/` (or get `550`
 * with `catchall: false`). `routes` relay domains to other SMTP servers (e.g. ferrymail) by IP:port,
 * one transaction per destination as Exim does by default. `mainlog` records `<= ... for a b` for
 * every received message (log_selector `+received_recipients`), so tests can tell transactions apart.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isCi } from './interop.js';
import { freePort, makeTempDir, removeDir, settlesWithin, waitFor, waitForGreeting } from './proc.js';

/** Where `.ci/run` unpacks the Debian package. */
export const EXIM_ROOT = '/opt/ferrymail-interop/exim';

export interface EximOptions {
  /** The domain Exim is final destination for. Default `exim.test`. */
  domain?: string;
  /** Local parts (any case) that get their own Maildir; others go to `catchall`. Default bob, carol, dave. */
  mailboxes?: readonly string[];
  /** Accept unlisted local parts into `catchall/` (default true); false: refused at RCPT with 550. */
  catchall?: boolean;
  /** Next hop per domain, `"127.0.0.1:2525"`; these domains are also relayed for loopback clients. */
  routes?: Readonly<Record<string, string>>;
  /** Offer STARTTLS with this certificate (key and cert must be readable by eximUser()). */
  tls?: { certPath: string; keyPath: string };
  /** Extra main-section lines (`name = value`), applied after the defaults. */
  main?: Readonly<Record<string, string>>;
  /** SMTP port on 127.0.0.1; default a free one. */
  port?: number;
  /** The exim binary; default eximBinary(). */
  bin?: string;
}

export interface Exim {
  /** The temp dir holding everything (exim.conf, spool/, log/, mail/). */
  dir: string;
  port: number;
  domain: string;
  /** Root of the delivered Maildirs: `<mailRoot>/<domain>/<user>/new/`. */
  mailRoot: string;
  mainlogPath: string;
  /** `mailRoot/<domain>/<user lowercased>`. */
  maildir(user: string, domain?: string): string;
  /** The main log so far. */
  mainlog(): Promise<string>;
  /** Wait until the main log matches `re`; returns the whole log. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** What the daemon wrote to stdout/stderr, plus the panic log. */
  output(): Promise<string>;
  /** SIGTERM to the daemon's process group, wait for exit (SIGKILL after 5 s); idempotent. */
  stop(): Promise<void>;
  /** stop() and remove the temp dir. */
  close(): Promise<void>;
}

const DOMAIN_RE = /^[a-z0-9.-]+$/i;
const LOCAL_RE = /^[A-Za-z0-9._+-]+$/;
/** The user the Debian build is compiled for; see eximUser(). */
export const EXIM_USER = 'Debian-exim';

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The exim binary to use: `$FERRYMAIL_EXIM`, else the unpacked one, else an installed exim4; or undefined. */
export function eximBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const given = env['FERRYMAIL_EXIM'];
  if (given) return given;
  return [path.join(EXIM_ROOT, 'usr/sbin/exim4'), '/usr/sbin/exim4'].find(executable);
}

/**
 * Why Exim cannot run here, or undefined when it can: the binary must exist and `-bV` must pass,
 * which proves its libraries load and the Debian-exim user exists.
 */
export function eximProblem(bin = eximBinary()): string | undefined {
  if (bin === undefined) return `no exim binary (${EXIM_ROOT}/usr/sbin/exim4 or /usr/sbin/exim4)`;
  if (!executable(bin)) return `${bin} is not executable`;
  const r = spawnSync(bin, ['-C', '/dev/null', '-bV'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status === 0) return undefined;
  const why = (r.error?.message ?? `${r.stderr}${r.stdout}`).trim().split('\n')[0];
  return `${bin} -bV failed: ${why}`;
}

/** Uid and gid of the Debian-exim user (made by `.ci/run`); throws when there is none. */
export function eximUser(): { uid: number; gid: number } {
  const id = (flag: string) => {
    const r = spawnSync('id', [flag, EXIM_USER], { encoding: 'utf8', timeout: 5000 });
    const n = Number(r.stdout.trim());
    if (r.status !== 0 || !Number.isInteger(n)) throw new Error(`no ${EXIM_USER} user: ${r.stderr.trim()}`);
    return n;
  };
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * For node:test's `skip`: a reason outside CI when Exim cannot run; under CI undefined, so the test
 * runs and fails naming the problem. (Not `apt-get install exim4`: it would remove Postfix.)
 */
export function eximSkip(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const problem = eximProblem(eximBinary(env));
  if (problem === undefined || isCi(env)) return undefined;
  return `Exim cannot run here: ${problem} (bash .ci/run unpacks exim4-daemon-light into ${EXIM_ROOT})`;
}

/** `"127.0.0.1:2525"` → `{ host: '127.0.0.1', port: 2525 }`; an IPv4 address only (no DNS). */
export function eximRoute(route: string): { host: string; port: number } {
  const m = /^(?:smtp:)?\[?(\d{1,3}(?:\.\d{1,3}){3})\]?:(\d+)$/.exec(route);
  const port = Number(m?.[2]);
  if (!m?.[1] || !(port > 0 && port < 65536))
    throw new TypeError(`Cannot route: expected IPv4:PORT: current value is ${route}`);
  return { host: m[1], port };
}

/** Everything eximConfig() needs, validated by startExim(). */
export interface EximLayout {
  bin: string;
  dir: string;
  port: number;
  domain: string;
  mailboxes: string[];
  catchall: boolean;
  routes: Array<{ domain: string; host: string; port: number }>;
  tls?: { certPath: string; keyPath: string };
  main: Readonly<Record<string, string>>;
}

/** The whole exim.conf. Paths come from our own temp dir, so nothing here is tainted. */
export function eximConfig(l: EximLayout): string {
  const main: Record<string, string> = {
    primary_hostname: l.domain,
    exim_path: l.bin,
    exim_user: EXIM_USER,
    exim_group: EXIM_USER,
    never_users: 'root',
    spool_directory: path.join(l.dir, 'spool'),
    log_file_path: path.join(l.dir, 'log', '%slog'),
    pid_file_path: path.join(l.dir, 'exim.pid'),
    local_interfaces: '<; 127.0.0.1',
    daemon_smtp_ports: String(l.port),
    // No DNS, no ident: loopback peers only.
    host_lookup: '',
    rfc1413_hosts: '',
    keep_environment: '',
    log_selector: '+received_recipients +outgoing_port +smtp_connection',
    'domainlist local_domains': l.domain,
    'domainlist relay_to_domains': l.routes.map((r) => r.domain).join(' : '),
    acl_smtp_rcpt: 'acl_check_rcpt',
    // Loopback clients are never "too busy".
    smtp_accept_max_per_host: '',
    smtp_accept_queue_per_connection: '0',
    tls_advertise_hosts: l.tls ? '*' : '',
    ...(l.tls ? { tls_certificate: l.tls.certPath, tls_privatekey: l.tls.keyPath } : {}),
    ...l.main,
  };
  const lines = Object.entries(main).map(([k, v]) => `${k} = ${v}`);
  const routers = l.routes.map(
    (r, i) => `route_${i}:
  driver = manualroute
  domains = ${r.domain}
  transport = smtp_${i}
  route_list = * ${r.host}
  self = send
  no_more
`,
  );
  const transports = l.routes.map(
    (r, i) => `smtp_${i}:
  driver = smtp
  port = ${r.port}
${l.tls ? '' : '  hosts_avoid_tls = *\n'}`,
  );
  return `# private test instance, see test/helpers/exim.ts
${lines.join('\n')}

begin acl
acl_check_rcpt:
  accept hosts = <; 127.0.0.0/8 ; ::1
         domains = +local_domains
         verify = recipient
  accept hosts = <; 127.0.0.0/8 ; ::1
         domains = +relay_to_domains
  deny   message = relay not permitted

begin routers
${routers.join('\n')}
${
  l.mailboxes.length > 0
    ? `mailbox:
  driver = accept
  domains = +local_domains
  local_parts = ${l.mailboxes.join(' : ')}
  transport = maildir
`
    : ''
}${
    l.catchall
      ? `
catchall:
  driver = accept
  domains = +local_domains
  transport = maildir_catchall
`
      : ''
  }
begin transports
${transports.join('\n')}
maildir:
  driver = appendfile
  # $local_part_data and $domain_data are the matched list items: untainted, lowercased.
  directory = ${path.join(l.dir, 'mail')}/\${domain_data}/\${local_part_data}
  maildir_format
  create_directory
  delivery_date_add
  envelope_to_add
  return_path_add
  mode = 0600

maildir_catchall:
  driver = appendfile
  directory = ${path.join(l.dir, 'mail')}/\${domain_data}/catchall
  maildir_format
  create_directory
  delivery_date_add
  envelope_to_add
  return_path_add
  mode = 0600

begin retry
# Quick retries (the queue runner runs every second), so a peer not ready yet stalls nothing.
*   *   F,5m,1s
`;
}

export async function startExim(opts: EximOptions = {}): Promise<Exim> {
  const bin = opts.bin ?? eximBinary();
  const problem = eximProblem(bin);
  if (problem !== undefined || bin === undefined)
    throw new Error(`interop peer missing: Exim cannot run: ${problem} (run .ci/run)`);
  const domain = (opts.domain ?? 'exim.test').toLowerCase();
  if (!DOMAIN_RE.test(domain)) throw new TypeError(`Cannot start Exim: bad 'domain': ${domain}`);
  const mailboxes = (opts.mailboxes ?? ['bob', 'carol', 'dave']).map((m) => {
    if (!LOCAL_RE.test(m)) throw new TypeError(`Cannot start Exim: bad mailbox ${m}`);
    return m.toLowerCase();
  });
  const routes = Object.entries(opts.routes ?? {}).map(([d, r]) => {
    if (!DOMAIN_RE.test(d)) throw new TypeError(`Cannot start Exim: bad route domain ${d}`);
    return { domain: d.toLowerCase(), ...eximRoute(r) };
  });
  const user = eximUser();
  // 0755: Exim runs as its own user and must reach spool/, log/ and mail/ inside it.
  const dir = await makeTempDir('ferrymail-exim-', 0o755);
  try {
    const port = opts.port ?? (await freePort());
    for (const d of ['spool', 'log', 'mail']) {
      await mkdir(path.join(dir, d));
      await chown(path.join(dir, d), user.uid, user.gid);
    }
    const confPath = path.join(dir, 'exim.conf');
    // Exim insists its config belongs to root and is writable by nobody else.
    await writeFile(
      confPath,
      eximConfig({
        bin,
        dir,
        port,
        domain,
        mailboxes,
        catchall: opts.catchall !== false,
        routes,
        ...(opts.tls ? { tls: opts.tls } : {}),
        main: opts.main ?? {},
      }),
      { mode: 0o644 },
    );

    // detached: a process group of its own, so stop() reaches the deliveries the daemon forks.
    const child: ChildProcess = spawn(bin, ['-C', confPath, '-bdf', '-q1s'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString('utf8')));
    child.stderr?.on('data', (b: Buffer) => (out += b.toString('utf8')));
    let running = true;
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', (e) => {
        out += `spawn error: ${e.message}\n`;
        resolve();
      });
    });
    void exited.then(() => (running = false));
    const signalGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // the group is gone already
      }
    };
    const killer = () => signalGroup('SIGKILL');
    process.once('exit', killer);

    const logDir = path.join(dir, 'log');
    const mainlogPath = path.join(logDir, 'mainlog');
    const readLog = () => readFile(mainlogPath, 'utf8').catch(() => '');
    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        process.removeListener('exit', killer);
        if (running) signalGroup('SIGTERM');
        if (!(await settlesWithin(exited, 5000))) {
          signalGroup('SIGKILL');
          await exited;
        }
        // Delivery processes outlive the daemon's SIGTERM for a moment; none may stay behind.
        signalGroup('SIGKILL');
      })());
    const instance: Exim = {
      dir,
      port,
      domain,
      mailRoot: path.join(dir, 'mail'),
      mainlogPath,
      maildir: (user, d = domain) => path.join(dir, 'mail', d.toLowerCase(), user.toLowerCase()),
      mainlog: readLog,
      waitForLog: (re, timeoutMs = 10_000) =>
        waitFor(
          `Exim mainlog to match ${re}`,
          async () => {
            const text = await readLog();
            return re.test(text) ? text : undefined;
          },
          timeoutMs,
          100,
        ),
      output: async () => out + (await readFile(path.join(logDir, 'paniclog'), 'utf8').catch(() => '')),
      stop,
      close: async () => {
        await stop();
        await removeDir(dir);
      },
    };
    const probing = new AbortController();
    try {
      await Promise.race([
        waitForGreeting(port, /^220 /, 10_000, { signal: probing.signal }),
        exited.then(() => {
          throw new Error('exim exited during start');
        }),
      ]);
    } catch (e) {
      const text = `${await instance.output()}${await readLog()}`;
      await stop();
      throw new Error(`Exim did not greet on port ${port}: ${(e as Error).message}\n--- output\n${text}`);
    } finally {
      probing.abort();
    }
    return instance;
  } catch (e) {
    await removeDir(dir);
    throw e;
  }
}
