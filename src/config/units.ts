/**
 * @module config/units
 * Durations (`"30s"`, `"5m"`, `"4h"`, `"5d"`) and sizes (`26214400`, `"25MB"`, `"25MiB"`) as they appear in
 * the config file, turned into milliseconds and bytes. Pure; returns `undefined` for text it cannot read so
 * the caller can name the key in its error.
 */

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * `"90s"` → 90000. Several parts may be joined: `"1h30m"`. A bare `"0"` is zero. Anything else
 * (negative, no unit, unknown unit, empty) is `undefined`.
 */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === '0') return 0;
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d|w))+$/.test(s)) return undefined;
  let total = 0;
  for (const part of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)) {
    total += Number(part[1]) * (DURATION_UNITS[part[2] ?? ''] ?? NaN);
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

/** The shortest exact spelling of a duration in ms: 300000 → `"5m"`, 5400000 → `"1h30m"`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/**
 * `"25MB"` → 25000000, `"25MiB"` or `"25M"` → 26214400, `"512"` → 512. Units are case-insensitive;
 * decimal (kB, MB, GB) and binary (K, M, G, KiB, MiB, GiB) are both understood.
 */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = SIZE_UNITS[(m[2] ?? '').toLowerCase()];
  if (unit === undefined) return undefined;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(Math.round(n)) ? Math.round(n) : undefined;
}
