/**
 * @module cli/queue-format
 * How `ferrymail queue list` and `queue show` print messages for people, in the manner of `postqueue -p`:
 * one line per message (id, size, age, sender), then one per recipient (state, attempts, next attempt, last
 * reply). Pure: the time is passed in.
 */
import type { QueuedMessage, RecipientState } from '../queue/types.js';

/** 45000 → `45s`, 200000 → `3m20s`, 93600000 → `1d2h`. Negative is shown as `0s`. */
export function formatAge(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d}d${h > 0 ? `${h}h` : ''}`;
  if (h > 0) return `${h}h${m > 0 ? `${m}m` : ''}`;
  if (m > 0) return `${m}m${s > 0 ? `${s}s` : ''}`;
  return `${s}s`;
}

/** 1234 → `1234`, 2500000 → `2.4M`. */
export function formatSize(bytes: number): string {
  if (bytes < 10_000) return String(bytes);
  if (bytes < 10 * 1024 * 1024) return `${(bytes / 1024).toFixed(1)}K`;
  return `${(bytes / 1024 / 1024).toFixed(1)}M`;
}

function recipientLines(msg: QueuedMessage, r: RecipientState, now: number): string[] {
  const address = msg.envelope.recipients[r.index]?.address ?? `#${r.index}`;
  const parts = [r.status.padEnd(9), address];
  const detail: string[] = [`${r.attempts} attempt${r.attempts === 1 ? '' : 's'}`];
  if (r.status === 'pending') {
    detail.push(r.nextAttemptAt <= now ? 'due now' : `next in ${formatAge(r.nextAttemptAt - now)}`);
  }
  const lines = [`    ${parts.join(' ')}  (${detail.join(', ')})`];
  if (r.lastReply) lines.push(`              ${r.lastReply}${r.remoteMta ? ` [${r.remoteMta}]` : ''}`);
  return lines;
}

function messageLines(msg: QueuedMessage, now: number): string[] {
  const e = msg.envelope;
  const head =
    `${e.id.padEnd(16)} ${formatSize(msg.size).padStart(8)} ${formatAge(now - e.receivedAt).padStart(8)}  ` +
    `${e.sender === '' ? '<>' : e.sender}${e.isBounce ? '  (DSN)' : ''}`;
  return [head, ...msg.recipients.flatMap((r) => recipientLines(msg, r, now))];
}

export function formatQueueList(msgs: readonly QueuedMessage[], now: number): string {
  if (msgs.length === 0) return 'queue is empty\n';
  const lines = [
    `${'-Queue ID-'.padEnd(16)} ${'--Size--'.padStart(8)} ${'--Age--'.padStart(8)}  -Sender/Recipient-`,
  ];
  let bytes = 0;
  let pending = 0;
  for (const m of msgs) {
    lines.push(...messageLines(m, now), '');
    bytes += m.size;
    pending += m.recipients.filter((r) => r.status === 'pending').length;
  }
  const n = msgs.length;
  lines.push(
    `-- ${formatSize(bytes)} bytes in ${n} message${n === 1 ? '' : 's'}, ${pending} recipient${pending === 1 ? '' : 's'} pending`,
  );
  return lines.join('\n') + '\n';
}

/** `queue show ID`: the envelope in full, then the recipients. */
export function formatMessage(msg: QueuedMessage, now: number): string {
  const e = msg.envelope;
  const rows: [string, string][] = [
    ['id', e.id],
    ['sender', e.sender === '' ? '<>' : e.sender],
    ['received', `${new Date(e.receivedAt).toISOString()} (${formatAge(now - e.receivedAt)} ago)`],
    ['size', `${msg.size} bytes`],
    ['body', `${e.body}${e.smtputf8 ? ', SMTPUTF8' : ''}`],
  ];
  if (e.client) {
    const c = e.client;
    rows.push([
      'client',
      `${c.ip}${c.helo ? ` (helo ${c.helo})` : ''}${c.authUser ? `, user ${c.authUser}` : ''}${c.tls ? ', TLS' : ''}`,
    ]);
  }
  if (e.envid) rows.push(['envid', e.envid]);
  if (e.ret) rows.push(['ret', e.ret]);
  if (e.isBounce) rows.push(['kind', 'delivery status notification']);
  const out = rows.map(([k, v]) => `${k.padEnd(9)} ${v}`);
  out.push('recipients:');
  for (const r of msg.recipients) out.push(...recipientLines(msg, r, now));
  return out.join('\n') + '\n';
}
