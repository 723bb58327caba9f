/**
 * @module queue/backoff
 * When to try a deferred recipient again, and when a message has been queued too long. Pure:
 * no clock, no randomness of its own (the caller passes `random`), so a schedule is a table test.
 *
 * Default schedule after the n-th failed attempt: 5m, 10m, 20m, 40m, then hourly, each +-15%
 * (jitter spreads retries out after a restart or an outage, so they do not all fire at once).
 * Default lifetime: 5 days, after which a still-deferred recipient fails with 4.4.7 (RFC 3463).
 */

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

export interface BackoffOptions {
  /** Delay after the first failed attempt. @default 300000 (5 minutes) */
  initialMs: number;
  /** Each further attempt multiplies the delay by this. @default 2 */
  factor: number;
  /** The delay never grows past this. @default 3600000 (1 hour) */
  maxMs: number;
  /** Relative jitter: the delay is scaled by a uniform factor in [1 - jitter, 1 + jitter]. @default 0.15 */
  jitter: number;
  /** Queue lifetime: a message older than this fails its deferred recipients. @default 432000000 (5 days) */
  maxAgeMs: number;
  /** Explicit delays, one per attempt, the last repeating; when set, initialMs/factor/maxMs are not used. */
  schedule?: readonly number[];
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initialMs: 5 * MINUTE,
  factor: 2,
  maxMs: 60 * MINUTE,
  jitter: 0.15,
  maxAgeMs: 5 * DAY,
});

/** Fills in defaults and checks the values; throws RangeError naming the bad option. */
export function backoffOptions(partial: Partial<BackoffOptions> = {}): BackoffOptions {
  const o: BackoffOptions = { ...DEFAULT_BACKOFF, ...partial };
  const check = (name: keyof BackoffOptions, ok: boolean, what: string): void => {
    if (!ok)
      throw new RangeError(
        `Cannot use backoff option '${name}': it must be ${what}: current value is ${o[name]}`,
      );
  };
  check('initialMs', Number.isFinite(o.initialMs) && o.initialMs > 0, 'a positive number of ms');
  check('factor', Number.isFinite(o.factor) && o.factor >= 1, 'a number >= 1');
  check('maxMs', Number.isFinite(o.maxMs) && o.maxMs >= o.initialMs, 'a number of ms >= initialMs');
  check('jitter', Number.isFinite(o.jitter) && o.jitter >= 0 && o.jitter < 1, 'a number in [0, 1)');
  check('maxAgeMs', Number.isFinite(o.maxAgeMs) && o.maxAgeMs > 0, 'a positive number of ms');
  if (o.schedule !== undefined) {
    check(
      'schedule',
      o.schedule.every((x) => Number.isFinite(x) && x > 0),
      'a list of positive numbers of ms',
    );
  }
  return o;
}

/**
 * The delay in ms before the next attempt, given how many attempts have been made (>= 1).
 * `random` is uniform in [0, 1); 0.5 gives the un-jittered delay.
 */
export function nextAttemptDelay(
  attempts: number,
  options: Partial<BackoffOptions> = {},
  random: () => number = Math.random,
): number {
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new RangeError(
      `Cannot compute a retry delay: 'attempts' must be an integer >= 1: current value is ${attempts}`,
    );
  }
  const o = backoffOptions(options);
  const steps = o.schedule;
  if (steps !== undefined && steps.length > 0) {
    // An explicit schedule (config `queue.retry`): step k waits steps[k]; the last one repeats.
    const step = steps[Math.min(attempts, steps.length) - 1] as number;
    return Math.max(1, Math.round(step * (1 + o.jitter * (2 * random() - 1))));
  }
  // Math.pow overflows to Infinity for huge attempt counts; min() then caps it cleanly.
  const base = Math.min(o.maxMs, o.initialMs * Math.pow(o.factor, attempts - 1));
  const scale = 1 + o.jitter * (2 * random() - 1);
  return Math.max(1, Math.round(base * scale));
}

/** True once a message received at `receivedAt` has been queued for `maxAgeMs` or longer. */
export function isExpired(
  receivedAt: number,
  now: number,
  maxAgeMs: number = DEFAULT_BACKOFF.maxAgeMs,
): boolean {
  return now - receivedAt >= maxAgeMs;
}
