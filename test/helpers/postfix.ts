/**
 * @module test/helpers/postfix
 * A private Postfix instance as a test peer (Debian's postfix package), wholly inside a temp dir:
 * its own config, queue and data directories, chroot off, smtpd on one free loopback port, no DNS,
 * and a log file (`maillog_file`, Postfix 3.4+) tests can read. The system instance is not used and
 * need not be configured or running. Needs root (Postfix drops to the `postfix` user itself).
 *
 * Mail for `domain` is delivered by virtual(8) into Maildirs `mailRoot/<domain>/<user>/` (user
 * lowercased, as Postfix looks it up); listed `mailboxes` get their own folder, anyone else lands in
 * `catchall/`. `routes` send domains to other SMTP/LMTP servers (e.g. ferrymail) by IP and port.
 */
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { assertPackages } from './interop.js';
import { freePort, isAlive, makeTempDir, removeDir, runOk, sleep, waitFor, waitForGreeting } from './proc.js';

export interface PostfixOptions {
  /** The domain Postfix is final destination for. Default `pf.test`. */
  domain?: string;
  /** Local parts (any case) that get their own Maildir; others go to `catchall`. Default bob, carol, dave. */
  mailboxes?: readonly string[];
  /** Accept unlisted local parts into `catchall/` (default true); false: smtpd rejects them with 550 5.1.1. */
  catchall?: boolean;
  /** Next hop per domain: `"127.0.0.1:2525"` (SMTP) or `"lmtp:127.0.0.1:24"`. Also relayed-to domains. */
  routes?: Readonly<Record<string, string>>;
  /** Offer STARTTLS on smtpd with this certificate. */
  tls?: { certPath: string; keyPath: string };
  /** Extra main.cf lines, applied last (override anything). */
  main?: Readonly<Record<string, string>>;
  /** smtpd's port on 127.0.0.1; default a free one. */
  port?: number;
  /** Uid/gid that owns delivered Maildirs. Default 65534 (nobody/nogroup). */
  uid?: number;
  gid?: number;
}

export interface Postfix {
  /** The temp dir holding everything (etc/, spool/, data/, mail/, maillog). */
  dir: string;
  /** smtpd's port on 127.0.0.1. */
  port: number;
  domain: string;
  /** Root of the delivered Maildirs: `<mailRoot>/<domain>/<user>/new/`. */
  mailRoot: string;
  maillogPath: string;
  /** `mailRoot/<domain>/<user lowercased>`. */
  maildir(user: string, domain?: string): string;
  /** The log so far. */
  maillog(): Promise<string>;
  /** Wait until the log matches `re`; returns the whole log. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Ask Postfix to retry deferred mail now. */
  flush(): Promise<void>;
  /** Stop the instance and wait for its master to exit; idempotent. */
  stop(): Promise<void>;
  /** stop() and remove the temp dir. */
  close(): Promise<void>;
}

const MASTER_CF = `# service type private unpriv chroot wakeup maxproc command
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

const DOMAIN_RE = /^[a-z0-9.-]+$/i;
const LOCAL_RE = /^[A-Za-z0-9._+-]+$/;

/** `"127.0.0.1:2525"` → `smtp:[127.0.0.1]:2525`; `"lmtp:127.0.0.1:24"` → `lmtp:inet:[127.0.0.1]:24`. */
export function postfixNexthop(route: string): string {
  const m = /^(?:(smtp|lmtp):)?\[?([0-9.]+|[0-9a-f:]+)\]?:(\d+)$/i.exec(route);
  if (!m) throw new TypeError(`Cannot route: expected [smtp:|lmtp:]IP:PORT: current value is ${route}`);
  const [, proto, host, port] = m;
  return proto?.toLowerCase() === 'lmtp' ? `lmtp:inet:[${host}]:${port}` : `smtp:[${host}]:${port}`;
}

export async function startPostfix(opts: PostfixOptions = {}): Promise<Postfix> {
  assertPackages('postfix');
  const domain = (opts.domain ?? 'pf.test').toLowerCase();
  if (!DOMAIN_RE.test(domain)) throw new TypeError(`Cannot start Postfix: bad 'domain': ${domain}`);
  const uid = opts.uid ?? 65534;
  const gid = opts.gid ?? 65534;
  // 0755: virtual(8) runs as `uid` and must traverse the dir to reach the Maildirs.
  const dir = await makeTempDir('ferrymail-postfix-', 0o755);
  try {
    const etc = path.join(dir, 'etc');
    const spool = path.join(dir, 'spool');
    const data = path.join(dir, 'data');
    const mailRoot = path.join(dir, 'mail');
    const maillogPath = path.join(dir, 'maillog');
    await Promise.all([etc, spool, data, mailRoot].map((d) => mkdir(d, { recursive: true })));
    // master.lock lives in data_directory, written by the postfix user.
    await runOk('chown', ['postfix', data]);
    await chown(mailRoot, uid, gid);

    const mailboxes = (opts.mailboxes ?? ['bob', 'carol', 'dave']).map((m) => {
      if (!LOCAL_RE.test(m)) throw new TypeError(`Cannot start Postfix: bad mailbox ${m}`);
      return m.toLowerCase();
    });
    const vmailbox = mailboxes.map((m) => `${m}@${domain} ${domain}/${m}/`);
    if (opts.catchall !== false) vmailbox.push(`@${domain} ${domain}/catchall/`);
    await writeFile(path.join(etc, 'vmailbox'), vmailbox.join('\n') + '\n');

    const routes = Object.entries(opts.routes ?? {}).map(([d, r]) => {
      if (!DOMAIN_RE.test(d)) throw new TypeError(`Cannot start Postfix: bad route domain ${d}`);
      return `${d.toLowerCase()} ${postfixNexthop(r)}`;
    });
    await writeFile(path.join(etc, 'transport'), routes.join('\n') + '\n');

    const port = opts.port ?? (await freePort());
    const main: Record<string, string> = {
      compatibility_level: '3.6',
      queue_directory: spool,
      data_directory: data,
      mail_owner: 'postfix',
      setgid_group: 'postdrop',
      myhostname: domain,
      mydomain: domain,
      myorigin: domain,
      mydestination: '',
      inet_interfaces: '127.0.0.1',
      inet_protocols: 'ipv4',
      mynetworks: '127.0.0.0/8',
      smtpd_relay_restrictions: 'permit_mynetworks reject_unauth_destination',
      smtpd_recipient_restrictions: 'permit_mynetworks reject_unauth_destination',
      relay_domains: Object.keys(opts.routes ?? {}).join(' '),
      alias_maps: '',
      alias_database: '',
      local_transport: 'error:local delivery is disabled in this test instance',
      virtual_mailbox_domains: domain,
      virtual_mailbox_base: mailRoot,
      virtual_mailbox_maps: `texthash:${path.join(etc, 'vmailbox')}`,
      virtual_uid_maps: `static:${uid}`,
      virtual_gid_maps: `static:${gid}`,
      virtual_minimum_uid: '1',
      transport_maps: `texthash:${path.join(etc, 'transport')}`,
      relayhost: '',
      // No DNS at all: every next hop is an [address].
      smtp_dns_support_level: 'disabled',
      lmtp_dns_support_level: 'disabled',
      smtp_host_lookup: 'native',
      smtp_tls_security_level: 'may',
      smtp_tls_loglevel: '1',
      smtpd_tls_loglevel: '1',
      maillog_file: maillogPath,
      maillog_file_prefixes: dir,
      biff: 'no',
      // Quick retries, so a peer that was not ready yet does not stall a test.
      queue_run_delay: '1s',
      minimal_backoff_time: '1s',
      maximal_backoff_time: '2s',
      smtp_connect_timeout: '5s',
      // Loopback peers are never "too busy"; keep Postfix from throttling test bursts.
      smtpd_client_connection_rate_limit: '0',
      smtpd_error_sleep_time: '0',
      smtputf8_enable: 'yes',
    };
    if (opts.tls) {
      main['smtpd_tls_security_level'] = 'may';
      main['smtpd_tls_cert_file'] = opts.tls.certPath;
      main['smtpd_tls_key_file'] = opts.tls.keyPath;
    }
    Object.assign(main, opts.main ?? {});
    const mainCf = Object.entries(main).map(([k, v]) => `${k} = ${v}`);
    await writeFile(path.join(etc, 'main.cf'), mainCf.join('\n') + '\n');
    await writeFile(path.join(etc, 'master.cf'), `127.0.0.1:${port} inet n - n - - smtpd\n` + MASTER_CF);

    await runOk('postfix', ['-c', etc, 'start'], { timeoutMs: 30_000 });
    const pidFile = path.join(spool, 'pid', 'master.pid');
    let stopped = false;

    const readLog = () => readFile(maillogPath, 'utf8').catch(() => '');
    const masterPid = async (): Promise<number | undefined> => {
      const text = await readFile(pidFile, 'utf8').catch(() => '');
      const pid = Number(text.trim());
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    };
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      const pid = await masterPid();
      if (pid === undefined || !isAlive(pid)) {
        await runOk('postfix', ['-c', etc, 'stop'], { timeoutMs: 15_000 }).catch(() => undefined);
        return;
      }
      // What `postfix stop` does, minus its one-second polling: SIGTERM to master, which takes
      // its children down with it.
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 5000;
      while (isAlive(pid) && Date.now() < deadline) await sleep(20);
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    };
    const instance: Postfix = {
      dir,
      port,
      domain,
      mailRoot,
      maillogPath,
      maildir: (user, d = domain) => path.join(mailRoot, d.toLowerCase(), user.toLowerCase()),
      maillog: readLog,
      waitForLog: (re, timeoutMs = 10_000) =>
        waitFor(
          `Postfix log to match ${re}`,
          async () => {
            const text = await readLog();
            return re.test(text) ? text : undefined;
          },
          timeoutMs,
          100,
        ),
      flush: async () => {
        await runOk('postfix', ['-c', etc, 'flush']);
      },
      stop,
      close: async () => {
        await stop();
        await removeDir(dir);
      },
    };
    try {
      await waitForGreeting(port, /^220 /, 10_000);
    } catch (e) {
      const log = await readLog();
      await instance.stop();
      throw new Error(`Postfix did not greet on port ${port}: ${(e as Error).message}\n--- maillog\n${log}`);
    }
    return instance;
  } catch (e) {
    await removeDir(dir);
    throw e;
  }
}
