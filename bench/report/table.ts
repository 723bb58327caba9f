/**
 * @module bench/report/table
 * Pure helpers for the benchmark report: read the harness's CSV (plain comma-separated, a header
 * line, no quoting: the harness never writes commas inside a field), group runs into medians,
 * and format numbers, ratios and Markdown tables.
 */
import { median } from '../stats.js';

export type Row = Record<string, string>;

/** Parses the harness's CSV text into rows keyed by the header's names. */
export function parseCsv(text: string): Row[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines.shift();
  if (header === undefined) return [];
  const keys = header.split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    const row: Row = {};
    keys.forEach((k, i) => (row[k] = cells[i] ?? ''));
    return row;
  });
}

/** The runs behind one table cell, and what they add up to. */
export interface Cell {
  values: number[];
  median: number;
  min: number;
  max: number;
  /** Runs that failed: non-zero exit, or fewer messages than sent. */
  failed: number;
}

export function cellOf(values: readonly number[], failed = 0): Cell {
  const finite = values.filter((v) => Number.isFinite(v));
  return {
    values: [...finite],
    median: median(finite),
    min: finite.length ? Math.min(...finite) : NaN,
    max: finite.length ? Math.max(...finite) : NaN,
    failed,
  };
}

/**
 * Groups rows by `key(row)` and makes a Cell of `value(row)` per group; `bad(row)` marks a failed
 * run (it still counts in the median: a failure is a measurement too, and hiding it would flatter).
 */
export function groupCells(
  rows: readonly Row[],
  key: (r: Row) => string,
  value: (r: Row) => number,
  bad: (r: Row) => boolean = () => false,
): Map<string, Cell> {
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const k = key(r);
    const list = groups.get(k);
    if (list) list.push(r);
    else groups.set(k, [r]);
  }
  const out = new Map<string, Cell>();
  for (const [k, rs] of groups) out.set(k, cellOf(rs.map(value), rs.filter(bad).length));
  return out;
}

/** A number for a table: thousands separated, `digits` decimals below 100, "n/a" when unknown. */
export function fmt(x: number, digits = 1): string {
  if (!Number.isFinite(x)) return 'n/a';
  const d = Math.abs(x) >= 100 ? 0 : digits;
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** "**median** (min–max)", with "n=K" when several runs, and a warning when a run failed. */
export function fmtCell(c: Cell | undefined, digits = 1): string {
  if (!c || c.values.length === 0) return c && c.failed ? `failed (${c.failed})` : '';
  let s = `**${fmt(c.median, digits)}**`;
  if (c.values.length > 1) s += ` (${fmt(c.min, digits)}–${fmt(c.max, digits)})`;
  if (c.failed) s += ` ⚠ ${c.failed} failed`;
  return s;
}

/** a / b, or NaN when either is unknown or b is zero. */
export function ratio(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return NaN;
  return a / b;
}

export function fmtRatio(r: number): string {
  return Number.isFinite(r) ? `${r.toFixed(2)}x` : 'n/a';
}

/** A Markdown table; cells are used as given (escape `|` yourself). */
export function mdTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
