/**
 * @module config/errors
 * The one error a config problem raises. Each issue names the file, the key path (`listeners[0].mode`),
 * what was expected and what was found, so the message alone tells the operator what to fix.
 */

export interface ConfigIssue {
  /** Key path such as `listeners[0].mode`, or `''` for the file as a whole. */
  path: string;
  /** The sentence after the path: `expected one of "mx", "submission", found "smtp"`. */
  message: string;
  /** For TOML syntax errors: 1-based line and column. */
  line?: number;
  column?: number;
}

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly issues: ConfigIssue[],
    options?: ErrorOptions,
  ) {
    super(issues.map((i) => formatIssue(file, i)).join('\n'), options);
  }
}

/** `ferrymail.toml: listeners[0].mode: expected …` or `ferrymail.toml:3:7: TOML syntax error: …`. */
export function formatIssue(file: string, issue: ConfigIssue): string {
  if (issue.line !== undefined) return `${file}:${issue.line}:${issue.column ?? 1}: ${issue.message}`;
  return issue.path === '' ? `${file}: ${issue.message}` : `${file}: ${issue.path}: ${issue.message}`;
}

/** Edit distance, for "did you mean" on unknown keys. */
export function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** The known key closest to `word`, if it is close enough to be a likely typo. */
export function suggest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  const lower = word.toLowerCase();
  for (const k of known) {
    const d = levenshtein(lower, k.toLowerCase());
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  const limit = Math.max(2, Math.floor(word.length / 3));
  return bestDist <= limit ? best : undefined;
}
