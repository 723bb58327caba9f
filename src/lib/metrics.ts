/**
 * @module lib/metrics
 * Prometheus metrics (prom-client) and the HTTP endpoint that serves them with a health check for
 * load balancers. One registry per server instance, never the global default, so tests and
 * reloads do not collide.
 */
import http from 'node:http';
import { Registry, Counter, Gauge, Histogram } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly connections: Counter<'listener'>;
  readonly accepted: Counter;
  readonly rejected: Counter<'reason'>;
  readonly deliveries: Counter<'outcome' | 'transport'>;
  readonly deliveryLatency: Histogram<'outcome'>;
  readonly queueSize: Gauge<'state'>;
  readonly openConnections: Gauge;

  constructor(
    sources: { queueCounts?: () => Promise<Record<string, number>>; openConnections?: () => number } = {},
  ) {
    const registers = [this.registry];
    this.connections = new Counter({
      name: 'ferrymail_connections_total',
      help: 'SMTP connections accepted',
      labelNames: ['listener'],
      registers,
    });
    this.accepted = new Counter({
      name: 'ferrymail_messages_accepted_total',
      help: 'Messages acknowledged with 250 (durable)',
      registers,
    });
    this.rejected = new Counter({
      name: 'ferrymail_messages_rejected_total',
      help: 'Messages or recipients refused, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.deliveries = new Counter({
      name: 'ferrymail_deliveries_total',
      help: 'Recipient delivery attempts by outcome',
      labelNames: ['outcome', 'transport'],
      registers,
    });
    this.deliveryLatency = new Histogram({
      name: 'ferrymail_delivery_latency_seconds',
      help: 'Time from acceptance to a final outcome per recipient',
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600, 86400],
      registers,
    });
    const counts = sources.queueCounts;
    this.queueSize = new Gauge({
      name: 'ferrymail_queue_recipients',
      help: 'Queued recipients by state',
      labelNames: ['state'],
      registers,
      async collect() {
        if (!counts) return;
        const c = await counts();
        for (const [state, n] of Object.entries(c)) this.set({ state }, n);
      },
    });
    const open = sources.openConnections;
    this.openConnections = new Gauge({
      name: 'ferrymail_open_connections',
      help: 'SMTP connections open now',
      registers,
      collect() {
        if (open) this.set(open());
      },
    });
  }
}

/** Serve `/metrics` and `/health` on host:port; resolves with the bound port. */
export async function startMetricsServer(
  metrics: Metrics,
  host: string,
  port: number,
  health: () => { ok: boolean; [k: string]: unknown },
): Promise<{ port: number; close(): Promise<void> }> {
  const srv = http.createServer((req, res) => {
    void (async () => {
      if (req.url === '/metrics') {
        res.setHeader('Content-Type', metrics.registry.contentType);
        res.end(await metrics.registry.metrics());
      } else if (req.url === '/health' || req.url === '/healthz') {
        const h = health();
        res.statusCode = h.ok ? 200 : 503;
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify(h));
      } else {
        res.statusCode = 404;
        res.end('not found: try /metrics or /health\n');
      }
    })().catch(() => {
      res.statusCode = 500;
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, () => resolve());
  });
  const a = srv.address() as { port: number };
  return { port: a.port, close: () => new Promise((r) => srv.close(() => r())) };
}
