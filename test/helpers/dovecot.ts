/**
 * @module test/helpers/dovecot
 * A private Dovecot instance as a test peer (Debian's dovecot-imapd and dovecot-lmtpd): its own
 * config, base_dir and state_dir in a temp dir, run in the foreground as a child process, with IMAP
 * and LMTP on free loopback ports. Every user of every domain exists and has the same password; the
 * mail store is `maildir:<mailRoot>/%d/%n` (names lowercased), the layout ferrymail's local delivery
 * writes (`data_dir/mail/<domain>/<user>/`), so pointing `mailRoot` at ferrymail's reads its mail.
 *
 * Dovecot refuses uid 0 for mail access, so mail is accessed as `uid` (default 65534, nobody): files
 * in `mailRoot` must belong to that user (run ferrymail as that user, see ferrymail.ts `uid`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile, chown } from 'node:fs/promises';
import path from 'node:path';
import { assertPackages } from './interop.js';
import { freePorts, makeTempDir, removeDir, run, settlesWithin, waitForGreeting } from './proc.js';

export interface DovecotOptions {
  /** Where the Maildirs are (`<mailRoot>/<domain>/<user>/`). Default: `mail/` in the temp dir. */
  mailRoot?: string;
  /** Password of every user. Default `secret`. */
  password?: string;
  uid?: number;
  gid?: number;
}

export interface Dovecot {
  dir: string;
  imapPort: number;
  lmtpPort: number;
  mailRoot: string;
  password: string;
  /** Dovecot's log so far. */
  logs(): Promise<string>;
  /** SIGTERM and wait for exit (SIGKILL after 5 s); idempotent. */
  stop(): Promise<void>;
  /** stop() and remove the temp dir (not `mailRoot` when it was given). */
  close(): Promise<void>;
}

function config(
  dir: string,
  mailRoot: string,
  o: { password: string; uid: number; gid: number; imap: number; lmtp: number },
): string {
  if (/["\\\n]/.test(o.password))
    throw new TypeError('Cannot start Dovecot: the password must not hold quotes');
  return `# private test instance, see test/helpers/dovecot.ts
base_dir = ${dir}/run
state_dir = ${dir}/state
instance_name = ferrymail-test-${path.basename(dir)}
log_path = ${dir}/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:${mailRoot}/%d/%n
recipient_delimiter = +
passdb {
  driver = static
  args = password=${o.password}
}
userdb {
  driver = static
  args = uid=${o.uid} gid=${o.gid} home=${dir}/home/%d/%n allow_all_users=yes
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${o.imap}
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${o.lmtp}
  }
  unix_listener lmtp {
    mode = 0600
  }
}
service imap-hibernate {
  unix_listener imap-hibernate {
    mode = 0600
  }
}
protocol lmtp {
  postmaster_address = postmaster@localhost
}
`;
}

export async function startDovecot(opts: DovecotOptions = {}): Promise<Dovecot> {
  assertPackages('dovecot-imapd', 'dovecot-lmtpd');
  const uid = opts.uid ?? 65534;
  const gid = opts.gid ?? 65534;
  const password = opts.password ?? 'secret';
  // 0755: the mail processes run as `uid` and must reach home/ and mail/ inside it.
  const dir = await makeTempDir('ferrymail-dovecot-', 0o755);
  try {
    const mailRoot = opts.mailRoot ?? path.join(dir, 'mail');
    await Promise.all(['run', 'state', 'home'].map((d) => mkdir(path.join(dir, d), { recursive: true })));
    await chown(path.join(dir, 'home'), uid, gid);
    if (opts.mailRoot === undefined) {
      await mkdir(mailRoot, { recursive: true });
      await chown(mailRoot, uid, gid);
    }
    const [imapPort, lmtpPort] = await freePorts(2);
    if (imapPort === undefined || lmtpPort === undefined) throw new Error('no ports');
    const confPath = path.join(dir, 'dovecot.conf');
    await writeFile(confPath, config(dir, mailRoot, { password, uid, gid, imap: imapPort, lmtp: lmtpPort }));

    const child: ChildProcess = spawn('dovecot', ['-F', '-c', confPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (b: Buffer) => (output += b.toString('utf8')));
    child.stderr?.on('data', (b: Buffer) => (output += b.toString('utf8')));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let exitedNow = false;
    void exited.then(() => (exitedNow = true));
    const killer = () => child.kill('SIGKILL');
    process.once('exit', killer);

    const logs = async () => output + (await readFile(path.join(dir, 'dovecot.log'), 'utf8').catch(() => ''));
    const stop = async () => {
      process.removeListener('exit', killer);
      if (exitedNow) return;
      child.kill('SIGTERM');
      if (!(await settlesWithin(exited, 5000))) {
        child.kill('SIGKILL');
        await exited;
      }
    };
    const instance: Dovecot = {
      dir,
      imapPort,
      lmtpPort,
      mailRoot,
      password,
      logs,
      stop,
      close: async () => {
        await stop();
        await removeDir(dir);
      },
    };
    const probing = new AbortController();
    try {
      const { signal } = probing;
      await Promise.race([
        Promise.all([
          waitForGreeting(imapPort, /^\* OK/, 10_000, { signal }),
          waitForGreeting(lmtpPort, /^220 /, 10_000, { signal }),
        ]),
        exited.then(() => {
          throw new Error('dovecot exited during start');
        }),
      ]);
    } catch (e) {
      const log = await logs();
      await stop();
      throw new Error(`Dovecot did not start: ${(e as Error).message}\n--- log\n${log}`);
    } finally {
      probing.abort();
    }
    return instance;
  } catch (e) {
    await removeDir(dir);
    throw e;
  }
}

export interface ImapMessage {
  subject: string;
  /** The whole message as IMAP returns it (RFC822), decoded as latin1 so 8-bit octets map 1:1. */
  raw: string;
  flags: string;
}

const IMAP_SCRIPT = String.raw`
import imaplib, json, sys, base64
port, user, password, mailbox = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
m = imaplib.IMAP4('127.0.0.1', port)
m.login(user, password)
typ, _ = m.select(mailbox, readonly=True)
if typ != 'OK':
    raise SystemExit('select failed')
typ, data = m.search(None, 'ALL')
out = []
for num in data[0].split():
    typ, d = m.fetch(num, '(FLAGS BODY.PEEK[])')
    meta = d[0][0].decode('latin-1')
    out.append({'meta': meta, 'raw': base64.b64encode(d[0][1]).decode('ascii')})
m.logout()
print(json.dumps(out))
`;

/**
 * Log in over IMAP with Python's imaplib (a client we did not write) and fetch every message of
 * `mailbox`, read-only so flags stay as they are.
 */
export async function imapMessages(
  port: number,
  user: string,
  password: string,
  mailbox = 'INBOX',
): Promise<ImapMessage[]> {
  assertPackages('python3');
  const r = await run('python3', ['-c', IMAP_SCRIPT, String(port), user, password, mailbox], {
    timeoutMs: 15_000,
  });
  if (r.code !== 0) throw new Error(`imaplib check failed (${r.code ?? r.signal}): ${r.stderr.trim()}`);
  const items = JSON.parse(r.stdout) as Array<{ meta: string; raw: string }>;
  return items.map(({ meta, raw }) => {
    const text = Buffer.from(raw, 'base64').toString('latin1');
    const head = text.split(/\r?\n\r?\n/, 1)[0] ?? '';
    const m = /^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(head);
    const subject = (m?.[1] ?? '').replace(/\r?\n[ \t]/g, ' ').trim();
    const flags = /FLAGS \(([^)]*)\)/.exec(meta)?.[1] ?? '';
    return { subject, raw: text, flags };
  });
}

/** The subjects of the messages in `mailbox`, in IMAP sequence order. */
export async function imapSubjects(
  port: number,
  user: string,
  password: string,
  mailbox = 'INBOX',
): Promise<string[]> {
  return (await imapMessages(port, user, password, mailbox)).map((m) => m.subject);
}
