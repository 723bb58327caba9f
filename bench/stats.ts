/**
 * @module bench/stats
 * Order statistics for the benchmark: median and nearest-rank percentiles of samples.
 * Pure; an empty sample has no statistic (NaN), which the report prints as "n/a".
 */

/** The q-quantile (0..1) of the samples by the nearest-rank method; NaN when empty. */
export function percentile(samples: readonly number[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`percentile: q must be within 0..1, got ${q}`);
  const finite = samples.filter((x) => Number.isFinite(x));
  if (finite.length === 0) return NaN;
  const sorted = [...finite].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1] as number;
}

/** The median (the mean of the two middle values for an even count); NaN when empty. */
export function median(samples: readonly number[]): number {
  const sorted = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return NaN;
  const mid = Math.floor(n / 2);
  return n % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The arithmetic mean; NaN when empty. */
export function mean(samples: readonly number[]): number {
  const finite = samples.filter((x) => Number.isFinite(x));
  if (finite.length === 0) return NaN;
  return finite.reduce((a, b) => a + b, 0) / finite.length;
}
