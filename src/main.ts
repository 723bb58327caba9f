/**
 * @module main
 * The composition root: builds every object from the config and wires receiver → queue →
 * scheduler → dispatcher → (Maildir | SMTP | LMTP), with DSNs fed back into the queue. No logic of
 * its own beyond wiring, the bounce hook, and the process lifecycle (signals, reload).
 */
import { join } from 'node:path';
import { mkdir, stat, chown, lchown, readdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import type { FerrymailConfig } from './config/schema.js';
import { loadConfig } from './config/load.js';
import { verifyPassword } from './config/password.js';
import { createLogger, type Logger } from './lib/log.js';
import { Metrics, startMetricsServer } from './lib/metrics.js';
import { FsQueueStore } from './queue/fs-store.js';
import { QueueIdGenerator } from './queue/id.js';
import { QueueSink } from './queue/sink.js';
import { Scheduler } from './queue/scheduler.js';
import { dsnMessages } from './queue/bounce.js';
import type { Envelope, QueuedMessage, RecipientOutcome } from './queue/types.js';
import { DomainPolicy } from './policy/domains.js';
import { LocalUsers } from './policy/users.js';
import { CidrList } from './policy/cidr.js';
import { MaildirWriter } from './local/maildir.js';
import { LocalTransport, expandRecipient } from './local/deliver.js';
import { SmtpTransport } from './sender/transport.js';
import { LmtpTransport } from './sender/lmtp.js';
import { DnsMxResolver } from './router/resolver.js';
import { Router } from './router/router.js';
import { Dispatcher } from './delivery/dispatcher.js';
import { SmtpServer, ServerError, type BoundListener } from './receiver/server.js';
import { rcptPolicy } from './receiver/rcpt-policy.js';
import { PickupCollector } from './cli/pickup.js';
import { startControlServer, type ControlServer } from './control/server.js';

export interface App {
  listeners: BoundListener[];
  metricsPort?: number;
  store: FsQueueStore;
  scheduler: Scheduler;
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Deliveries start at once (default); tests of the queue alone may turn them off. */
  deliver?: boolean;
}

function routesFor(config: FerrymailConfig) {
  const out: Record<
    string,
    | string
    | {
        host: string;
        port?: number;
        tls?: 'none' | 'opportunistic' | 'require' | 'verify';
        auth?: { user: string; pass: string };
      }
  > = {};
  for (const [k, v] of Object.entries(config.routes)) {
    if (typeof v === 'string') out[k] = v;
    else {
      out[k] = {
        host: v.host,
        ...(v.port !== undefined ? { port: v.port } : {}),
        ...(v.tls !== undefined ? { tls: v.tls } : {}),
        ...(v.auth ? { auth: { user: v.auth.user, pass: v.auth.password } } : {}),
      };
    }
  }
  return out;
}

/** Build and start everything; resolves when every listener is bound. */
export async function startApp(config: FerrymailConfig, opts: StartOptions = {}): Promise<App> {
  const log =
    opts.logger ??
    createLogger({ level: config.log.level, ...(config.log.format ? { format: config.log.format } : {}) });
  const dataDir = config.data_dir;
  await mkdir(dataDir, { recursive: true });

  const store = new FsQueueStore(join(dataDir, 'queue'));
  const ids = new QueueIdGenerator();

  const domains = new DomainPolicy({ local: config.domains.local, relay: config.domains.relay });
  const users = new LocalUsers(
    {
      users: config.users.list,
      aliases: config.aliases,
      caseSensitive: config.users.case_sensitive,
      detailSeparator: config.users.detail_separator,
    },
    domains,
  );
  const postmasterDomain = config.domains.local[0];
  const local = new LocalTransport({
    writer: new MaildirWriter({ root: join(dataDir, 'mail') }),
    users,
    ...(postmasterDomain !== undefined ? { postmasterDomain } : {}),
  });
  const heloName = config.delivery.helo_name ?? config.hostname;
  const timeouts = {
    connect: config.delivery.connect_timeout,
    greeting: config.delivery.greeting_timeout,
    command: config.delivery.command_timeout,
    dataInit: config.delivery.data_init_timeout,
    dataBlock: config.delivery.data_block_timeout,
    dataDone: config.delivery.data_done_timeout,
  };
  const smtp = new SmtpTransport({ heloName, timeouts, log });
  const lmtp = new LmtpTransport({ heloName, timeouts });
  const resolver = new DnsMxResolver(config.dns.servers.length > 0 ? { servers: config.dns.servers } : {});
  const router = new Router({
    localDomains: config.domains.local,
    relayDomains: config.domains.relay,
    routes: routesFor(config),
    resolver,
    selfNames: [config.hostname],
    mxPort: config.delivery.mx_port,
    tls: config.delivery.tls,
  });
  const dispatcher = new Dispatcher({
    router,
    transports: { local, smtp, lmtp },
    expand: (a) => expandRecipient(users, a, postmasterDomain),
    maxReceived: config.limits.max_received_headers,
  });

  let sinkRef: QueueSink | null = null;
  /** Queue a message ferrymail itself wrote (DSN, postmaster notice), through the same durable path. */
  const enqueueGenerated = async (env: Envelope, data: Buffer): Promise<void> => {
    const w = (sinkRef as QueueSink).begin(env);
    w.write(data);
    await w.commit();
  };

  const metrics = new Metrics({
    queueCounts: async () => {
      const c: Record<string, number> = { pending: 0, delivered: 0, failed: 0 };
      for (const m of await store.list()) for (const r of m.recipients) c[r.status] = (c[r.status] ?? 0) + 1;
      return c;
    },
    openConnections: () => server.connectionCount,
  });

  // Never a DSN to <> (RFC 5321 §4.5.5): dsnMessages turns those into a notice to the postmaster.
  const onFinal = async (
    msg: QueuedMessage,
    newlyFailed: number[],
    newlyDelivered: number[],
    delayed: number[],
    message: Buffer,
  ): Promise<void> => {
    const env = msg.envelope;
    if (newlyFailed.length > 0 && (env.sender === '' || env.isBounce)) {
      log.warn(
        { id: env.id, failed: newlyFailed.map((i) => env.recipients[i]?.address) },
        'undeliverable message with null sender',
      );
    }
    const out = dsnMessages(msg, newlyFailed, newlyDelivered, delayed, message, {
      hostname: config.hostname,
      now: Date.now(),
      newId: () => (sinkRef as QueueSink).newId(),
      ...(postmasterDomain !== undefined ? { postmaster: `postmaster@${postmasterDomain}` } : {}),
      willRetryUntil: env.receivedAt + config.queue.max_age,
    });
    for (const m of out) {
      await enqueueGenerated(m.envelope, m.data);
      log.info(
        { id: m.envelope.id, about: env.id, kind: m.kind, recipients: m.envelope.recipients.length },
        'dsn queued',
      );
    }
  };

  const deliver = async (
    msg: QueuedMessage,
    message: Buffer,
    indices: number[],
  ): Promise<RecipientOutcome[]> => {
    const started = Date.now();
    const outcomes = await dispatcher.deliver(msg, message, indices);
    for (const o of outcomes) {
      const rcpt = msg.envelope.recipients[o.index];
      metrics.deliveries.inc({ outcome: o.result, transport: o.remoteMta ? 'remote' : 'local' });
      if (o.result !== 'deferred')
        metrics.deliveryLatency.observe({ outcome: o.result }, (Date.now() - msg.envelope.receivedAt) / 1000);
      log.info(
        {
          id: msg.envelope.id,
          from: msg.envelope.sender,
          to: rcpt?.address,
          result: o.result,
          status: o.status,
          reply: o.reply,
          relay: o.remoteMta,
          delay: (Date.now() - msg.envelope.receivedAt) / 1000,
          attempt_ms: Date.now() - started,
        },
        'delivery',
      );
    }
    return outcomes;
  };

  const retry = config.queue.retry;
  const scheduler = new Scheduler({
    store,
    deliver,
    onFinal,
    concurrency: config.queue.concurrency,
    backoff: { schedule: retry, maxAgeMs: config.queue.max_age },
    ...(config.queue.delay_warning !== undefined
      ? { delayWarningMs: config.queue.delay_warning }
      : { delayWarningMs: 0 }),
    onError: (err, id) => log.error({ err: String(err), id }, 'queue error'),
  });

  const sink = new QueueSink({
    store,
    ids,
    onCommitted: (id) => {
      metrics.accepted.inc();
      if (!config.queue.hold) scheduler.enqueued(id);
    },
  });
  sinkRef = sink;

  const relayNets = new CidrList(config.relay.networks);
  const authUsers = config.auth.users;
  const hasAuth = Object.keys(authUsers).length > 0;
  const server: SmtpServer = new SmtpServer({
    hostname: config.hostname,
    listeners: config.listeners.map((l) => ({
      host: l.host,
      port: l.port,
      mode: l.mode,
      ...(l.auth_required !== undefined ? { authRequired: l.auth_required } : {}),
      ...(l.allow_insecure_auth !== undefined ? { allowInsecureAuth: l.allow_insecure_auth } : {}),
    })),
    ...(config.tls
      ? { tls: { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) } }
      : {}),
    sink: {
      newId: () => sink.newId(),
      begin: (env) => {
        const w = sink.begin(env);
        return {
          write: (c) => w.write(c),
          abort: () => w.abort(),
          commit: async () => {
            await w.commit();
            log.info(
              {
                id: env.id,
                from: env.sender,
                rcpts: env.recipients.length,
                size: w.bytes,
                client: env.client?.ip,
              },
              'accepted',
            );
          },
        };
      },
    },
    policy: rcptPolicy(domains, users, relayNets, { vrfy: config.vrfy }),
    perIpExempt: (ip) => relayNets.contains(ip),
    ...(hasAuth
      ? {
          checkAuth: async (user: string, password: string) => {
            const stored = authUsers[user];
            return stored !== undefined && (await verifyPassword(stored, password));
          },
        }
      : {}),
    limits: {
      maxMessageSize: config.limits.max_message_size,
      maxRecipients: config.limits.max_recipients,
      maxErrors: config.limits.max_errors,
      maxConnections: config.limits.max_connections,
      maxConnectionsPerIp: config.limits.max_connections_per_ip,
      commandTimeoutMs: config.limits.command_timeout,
      dataTimeoutMs: config.limits.data_timeout,
      commandLineLimit: config.limits.command_line_length,
      dataLineLimit: config.limits.line_length,
    },
    log: (event, fields) => {
      if (event === 'connect') metrics.connections.inc({ listener: String(fields.listener) });
      if (event === 'connection-refused') metrics.rejected.inc({ reason: 'connection-limit' });
      log.info(fields, event);
    },
  });

  // Bind first (ports below 1024 need root), then drop privileges, then touch the data: every
  // file the server writes from here on belongs to the unprivileged user. Connections that
  // arrive meanwhile wait in the server until release().
  let listeners: BoundListener[];
  try {
    listeners = await server.start({ hold: true });
    await dropPrivileges(config, dataDir, log);
    await store.open();
  } catch (err) {
    await server.stop(0);
    await store.close().catch(() => undefined);
    throw err;
  }
  server.release();
  if (config.queue.hold)
    log.warn({}, 'queue.hold is set: mail is accepted and queued, and nothing is delivered');
  else if (opts.deliver !== false) scheduler.start();

  const pickup = new PickupCollector(join(dataDir, 'pickup'), sink, {
    hostname: config.hostname,
    logger: {
      info: (o, m) => log.info(o, m),
      warn: (o, m) => log.warn(o, m),
      error: (o, m) => log.error(o, m),
    },
  });
  pickup.start();

  let control: ControlServer | undefined;
  try {
    control = await startControlServer(join(dataDir, 'control.sock'), {
      list: () => store.list(),
      show: async (id) => (await store.get(id)) ?? undefined,
      flush: async () => {
        if (!config.queue.hold) return scheduler.flush();
        log.warn({}, 'queue flush ignored: queue.hold is set (nothing is delivered until it is lifted)');
        return 0;
      },
      remove: async (idsToRemove) => {
        const removed: string[] = [];
        const missing: string[] = [];
        for (const id of idsToRemove) ((await store.remove(id)) ? removed : missing).push(id);
        return { removed, missing };
      },
      status: () => ({ pid: process.pid, listeners, connections: server.connectionCount }),
    });
  } catch (err) {
    log.warn(
      { err: String(err) },
      'control socket not available; queue commands will read the queue directly',
    );
  }

  let metricsPort: number | undefined;
  let metricsServer: { close(): Promise<void> } | undefined;
  if (config.metrics) {
    const m = await startMetricsServer(metrics, config.metrics.host, config.metrics.port, () => ({
      ok: true,
      connections: server.connectionCount,
    }));
    metricsPort = m.port;
    metricsServer = m;
  }
  log.info({ listeners, data_dir: dataDir, hostname: config.hostname }, 'ferrymail started');

  let stopped = false;
  return {
    listeners,
    ...(metricsPort !== undefined ? { metricsPort } : {}),
    store,
    scheduler,
    async stop(graceMs = 10_000) {
      if (stopped) return;
      stopped = true;
      log.info({}, 'stopping: no new connections, finishing transactions in flight');
      await server.stop(graceMs);
      await pickup.stop();
      await scheduler.stop();
      await smtp.close();
      await control?.close();
      await metricsServer?.close();
      await store.close();
      log.info({}, 'stopped');
    },
  };
}

/**
 * Run as `config.user` / `config.group` once the listeners are bound. The data folder is handed to
 * that user first (recursively, only when it is not theirs yet) so the queue and Maildirs stay
 * writable. A clear error when the user does not exist or we are not root.
 */
async function dropPrivileges(config: FerrymailConfig, dataDir: string, log: Logger): Promise<void> {
  if (config.user === undefined) return;
  if (typeof process.getuid !== 'function' || typeof process.setuid !== 'function') return;
  const target = config.user;
  if (process.getuid() !== 0) {
    throw new ServerError(
      `config key "user" asks to run as ${target}, but ferrymail was not started as root; start it as root or remove "user"`,
      'PRIVILEGES',
    );
  }
  let uid: number;
  let gid: number;
  try {
    const { execFileSync } = await import('node:child_process');
    uid = Number(execFileSync('id', ['-u', target], { encoding: 'utf8' }).trim());
    gid = Number(execFileSync('id', ['-g', target], { encoding: 'utf8' }).trim());
    if (config.group !== undefined) {
      const line = execFileSync('getent', ['group', config.group], { encoding: 'utf8' }).trim();
      gid = Number(line.split(':')[2]);
    }
  } catch {
    throw new ServerError(
      `config key "user" (or "group") names ${target}${config.group ? '/' + config.group : ''}, which does not exist on this machine`,
      'PRIVILEGES',
    );
  }
  const st = await stat(dataDir);
  if (st.uid !== uid) await chownTree(dataDir, uid, gid);
  process.setgroups?.([gid]);
  process.setgid?.(gid);
  process.setuid(uid);
  log.info({ user: target, uid, gid }, 'dropped privileges');
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await chown(dir, uid, gid);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, uid, gid);
    else await lchown(p, uid, gid);
  }
}

/** `ferrymail serve`: run until SIGTERM/SIGINT; SIGHUP reloads the config (a bad one keeps the old). */
export async function serve(config: FerrymailConfig, opts: { configPath?: string } = {}): Promise<void> {
  const log = createLogger({
    level: config.log.level,
    ...(config.log.format ? { format: config.log.format } : {}),
  });
  let app = await startApp(config, { logger: log });
  let current = config;
  let busy = false;
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info({ signal: sig }, 'shutdown requested');
      void app.stop().then(resolve, (err) => {
        log.error({ err: String(err) }, 'error during shutdown');
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      if (busy) return;
      busy = true;
      void (async () => {
        try {
          const next = await loadConfig(opts.configPath);
          log.info({}, 'reloading configuration');
          await app.stop(5000);
          try {
            app = await startApp(next, { logger: log });
            current = next;
          } catch (err) {
            log.error({ err: String(err) }, 'new configuration failed to start; restarting the old one');
            app = await startApp(current, { logger: log });
          }
        } catch (err) {
          log.error(
            { err: err instanceof Error ? err.message : String(err) },
            'configuration reload refused; the old configuration keeps running',
          );
        } finally {
          busy = false;
        }
      })();
    });
  });
}
