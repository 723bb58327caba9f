/**
 * @module config/dsl
 * A small schema language written as data. One description of each key (type, default, constraints,
 * description, example) drives three things: validation of a parsed TOML document (with key paths in every
 * error), the typed defaults (defaults are written in TOML form and pass through the same validation), and
 * the generated reference in docs/config.md. Unknown keys are errors, with a "did you mean" suggestion.
 */
import { isAbsolute, resolve } from 'node:path';
import { suggest, type ConfigIssue } from './errors.js';
import { parseDuration, parseSize } from './units.js';

/** What validation may look at besides the value: where relative paths start, the machine's name. */
export interface ValidateContext {
  /** Folder that relative paths resolve against (the config file's folder). */
  baseDir: string;
  /** Default for `hostname`. */
  hostname: string;
  issues: ConfigIssue[];
}

interface Common {
  description: string;
  /** A TOML value shown in the docs, e.g. `"mx.example.test"`. */
  example?: string;
  /** Absent means `undefined` in the typed config (no default). */
  optional?: boolean;
  /** Default in TOML form (validated like input); a function for defaults that depend on the machine. */
  default?: unknown;
  dynamicDefault?: (ctx: ValidateContext) => unknown;
  /** How the docs show the default when it is not a plain value. */
  defaultDoc?: string;
}

/** Returns `undefined` when fine, else what was expected (`an IPv4 or IPv6 network such as "10.0.0.0/8"`). */
export type Check<T> = (value: T, ctx: ValidateContext) => string | undefined;

export interface StringField extends Common {
  type: 'string';
  enum?: readonly string[];
  check?: Check<string>;
  /** Resolve against the config file's folder. */
  path?: boolean;
  /** Applied after checks, e.g. lowercasing a domain. */
  transform?: (value: string) => unknown;
  /** Shown in docs and errors instead of "a string", e.g. `host:port`. */
  expect?: string;
}
export interface IntegerField extends Common {
  type: 'integer';
  min?: number;
  max?: number;
  unit?: string;
}
export interface BooleanField extends Common {
  type: 'boolean';
}
/** A duration string, turned into milliseconds. */
export interface DurationField extends Common {
  type: 'duration';
  minMs?: number;
}
/** Bytes: an integer, or a string with a unit (`"25MB"`, `"25MiB"`). */
export interface SizeField extends Common {
  type: 'size';
  min?: number;
}
export interface ListField extends Common {
  type: 'list';
  of: Field;
  minItems?: number;
}
/** A table with a fixed set of keys. */
export interface TableField extends Common {
  type: 'table';
  fields: Record<string, Field>;
}
/** A table whose keys are data (domains, user names); every value has the same shape. */
export interface MapField extends Common {
  type: 'map';
  of: Field;
  keyCheck?: Check<string>;
  keyDoc?: string;
}
/** A string, or another shape told apart by the TOML type (a route: `"host:port"` or `{ host = … }`). */
export interface EitherField extends Common {
  type: 'either';
  string: StringField;
  other: TableField | ListField;
}

export type Field =
  | StringField
  | IntegerField
  | BooleanField
  | DurationField
  | SizeField
  | ListField
  | TableField
  | MapField
  | EitherField;

export type KeyPath = readonly (string | number)[];

/** `listeners[0].mode`, `routes."relay.test".host`. */
export function formatPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = /^[A-Za-z0-9_-]+$/.test(seg) ? seg : JSON.stringify(seg);
      out += out === '' ? key : `.${key}`;
    }
  }
  return out;
}

/** How a found value reads in an error: `"smtp"`, `25`, `true`, `an array`, `a table`. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    const s = JSON.stringify(value);
    return s.length > 70 ? s.slice(0, 67) + '…"' : s;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${value}`;
  }
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return `a date (${value.toISOString()})`;
  if (value === null || value === undefined) return 'nothing';
  return 'a table';
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** The phrase after "expected" for a field's type. */
export function expectation(field: Field): string {
  switch (field.type) {
    case 'string':
      if (field.enum) return `one of ${field.enum.map((e) => JSON.stringify(e)).join(', ')}`;
      return field.expect ?? 'a string';
    case 'integer': {
      const unit = field.unit ? ` (${field.unit})` : '';
      if (field.min !== undefined && field.max !== undefined) {
        return `an integer from ${field.min} to ${field.max}${unit}`;
      }
      if (field.min !== undefined) return `an integer of at least ${field.min}${unit}`;
      return `an integer${unit}`;
    }
    case 'boolean':
      return 'true or false';
    case 'duration':
      return 'a duration such as "30s", "5m", "4h" or "5d"';
    case 'size':
      return 'a size in bytes such as 26214400 or "25MB"';
    case 'list':
      return `an array of ${plural(field.of)}`;
    case 'table':
    case 'map':
      return 'a table';
    case 'either':
      return `${expectation(field.string)}, or ${expectation(field.other)}`;
  }
}

function plural(field: Field): string {
  switch (field.type) {
    case 'string':
      return 'strings';
    case 'table':
      return 'tables';
    case 'duration':
      return 'durations';
    default:
      return `${field.type}s`;
  }
}

function fail(ctx: ValidateContext, path: KeyPath, message: string): undefined {
  ctx.issues.push({ path: formatPath(path), message });
  return undefined;
}

function mismatch(ctx: ValidateContext, path: KeyPath, expected: string, found: unknown): undefined {
  return fail(ctx, path, `expected ${expected}, found ${describeValue(found)}`);
}

/**
 * Validate `value` (from TOML, or `undefined` when the key is absent) against `field`, returning the typed
 * value. Problems are appended to `ctx.issues`; the return value is then meaningless.
 */
export function validate(field: Field, value: unknown, path: KeyPath, ctx: ValidateContext): unknown {
  if (value === undefined) {
    if (field.dynamicDefault) value = field.dynamicDefault(ctx);
    else if (field.default !== undefined) value = structuredClone(field.default);
    else if (field.type === 'table' && !field.optional) value = {};
    else if (field.optional) return undefined;
    else return fail(ctx, path, `required key is missing (expected ${expectation(field)})`);
  }
  switch (field.type) {
    case 'string':
      return validateString(field, value, path, ctx);
    case 'integer': {
      if (typeof value !== 'number' || !Number.isInteger(value))
        return mismatch(ctx, path, expectation(field), value);
      if ((field.min !== undefined && value < field.min) || (field.max !== undefined && value > field.max)) {
        return mismatch(ctx, path, expectation(field), value);
      }
      return value;
    }
    case 'boolean':
      return typeof value === 'boolean' ? value : mismatch(ctx, path, expectation(field), value);
    case 'duration': {
      const ms = typeof value === 'string' ? parseDuration(value) : undefined;
      if (ms === undefined) return mismatch(ctx, path, expectation(field), value);
      if (field.minMs !== undefined && ms < field.minMs) {
        return mismatch(ctx, path, `a duration of at least ${field.minMs / 1000}s`, value);
      }
      return ms;
    }
    case 'size': {
      const n =
        typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
          ? value
          : typeof value === 'string'
            ? parseSize(value)
            : undefined;
      if (n === undefined) return mismatch(ctx, path, expectation(field), value);
      if (field.min !== undefined && n < field.min) {
        return mismatch(ctx, path, `a size of at least ${field.min} bytes`, value);
      }
      return n;
    }
    case 'list': {
      if (!Array.isArray(value)) return mismatch(ctx, path, expectation(field), value);
      if (field.minItems !== undefined && value.length < field.minItems) {
        return fail(ctx, path, `expected at least ${field.minItems} item(s), found an empty array`);
      }
      return value.map((item, i) => validate(field.of, item, [...path, i], ctx));
    }
    case 'table':
      return validateTable(field, value, path, ctx);
    case 'map': {
      if (!isTable(value)) return mismatch(ctx, path, expectation(field), value);
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        // Assigning "__proto__" would replace the object's prototype instead of adding a key.
        const bad = k === '__proto__' ? 'anything but "__proto__"' : field.keyCheck?.(k, ctx);
        if (bad !== undefined) {
          fail(ctx, [...path, k], `expected the key to be ${bad}`);
          continue;
        }
        out[k] = validate(field.of, v, [...path, k], ctx);
      }
      return out;
    }
    case 'either':
      if (typeof value === 'string') return validateString(field.string, value, path, ctx);
      if (field.other.type === 'table' ? isTable(value) : Array.isArray(value)) {
        return validate(field.other, value, path, ctx);
      }
      return mismatch(ctx, path, expectation(field), value);
  }
}

function validateString(field: StringField, value: unknown, path: KeyPath, ctx: ValidateContext): unknown {
  if (typeof value !== 'string') return mismatch(ctx, path, expectation(field), value);
  if (field.enum && !field.enum.includes(value)) return mismatch(ctx, path, expectation(field), value);
  const bad = field.check?.(value, ctx);
  if (bad !== undefined) return mismatch(ctx, path, bad, value);
  if (field.path) return isAbsolute(value) ? value : resolve(ctx.baseDir, value);
  return field.transform ? field.transform(value) : value;
}

function validateTable(field: TableField, value: unknown, path: KeyPath, ctx: ValidateContext): unknown {
  if (!isTable(value)) return mismatch(ctx, path, expectation(field), value);
  const known = Object.keys(field.fields);
  for (const key of Object.keys(value)) {
    if (Object.hasOwn(field.fields, key)) continue;
    const near = suggest(key, known);
    const where = path.length === 0 ? 'at the top level' : `in [${formatPath(path)}]`;
    fail(ctx, [...path, key], `unknown key ${where}${near ? `; did you mean "${near}"?` : ''}`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, sub] of Object.entries(field.fields)) {
    const v = validate(sub, value[key], [...path, key], ctx);
    if (v !== undefined) out[key] = v;
  }
  return out;
}
