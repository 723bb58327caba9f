/**
 * @module config/docs
 * docs/config.md, generated from the schema so the reference cannot drift from the code
 * (`ferrymail config-docs > docs/config.md`; a test compares the committed file with this output).
 * Deterministic: machine-dependent defaults are shown by their `defaultDoc` text.
 */
import type { Field, TableField } from './dsl.js';
import { SCHEMA } from './schema.js';

/** A complete config showing the common keys; the docs embed it and a test checks that it loads. */
export const EXAMPLE_CONFIG = `hostname = "mx.example.test"
data_dir = "/var/spool/ferrymail"
user = "ferrymail"
group = "ferrymail"

[[listeners]]
address = "0.0.0.0:25"
mode = "mx"

[[listeners]]
address = "0.0.0.0:587"
mode = "submission"

[tls]                                  # paths relative to this file's folder
cert = "tls/cert.pem"
key = "tls/key.pem"

[domains]
local = ["example.test"]
relay = ["relay.test"]

[relay]
networks = ["127.0.0.1/32", "::1/128", "192.0.2.0/24"]

[routes]
"relay.test" = "10.0.0.2:25"
"lists.example.test" = "lmtp:/run/dovecot/lmtp"

[users]
list = ["alice", "bob"]

[aliases]
postmaster = "alice"
abuse = ["alice", "bob"]

[auth.users]
alice = "env:ALICE_PASSWORD"

[limits]
max_message_size = "25MiB"
max_connections_per_ip = 10

[queue]
retry = ["5m", "15m", "1h", "4h"]
max_age = "5d"

[log]
level = "info"

[metrics]
address = "127.0.0.1:9025"
`;

function inline(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(inline).join(', ')}]`;
  if (typeof value === 'object' && value !== null) {
    const parts = Object.entries(value).map(
      ([k, v]) => `${/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k)} = ${inline(v)}`,
    );
    return parts.length === 0 ? '{}' : `{ ${parts.join(', ')} }`;
  }
  return String(value);
}

function typeName(f: Field): string {
  switch (f.type) {
    case 'string':
      return f.enum ? f.enum.map((e) => `"${e}"`).join(' \\| ') : f.path ? 'path' : 'string';
    case 'integer':
      return f.min !== undefined && f.max !== undefined
        ? `integer, ${f.min}–${f.max}`
        : f.min !== undefined
          ? `integer, at least ${f.min}`
          : 'integer';
    case 'list':
      return `array of ${typeName(f.of)}`;
    case 'map':
      return `table of ${typeName(f.of)}`;
    case 'either':
      return `${typeName(f.string)} or ${f.other.type === 'table' ? 'table' : typeName(f.other)}`;
    default:
      return f.type;
  }
}

function defaultText(f: Field): string | undefined {
  if (f.defaultDoc !== undefined) return f.defaultDoc;
  if (f.default !== undefined) return `\`${inline(f.default)}\``;
  if (f.optional) return 'not set';
  if (f.type === 'table') return undefined;
  return 'required';
}

function keyBlock(name: string, f: Field): string {
  let out = `#### \`${name}\`\n\n${f.description}\n\n`;
  out += `- type: ${typeName(f)}\n`;
  const d = defaultText(f);
  if (d !== undefined) out += `- default: ${d}\n`;
  if (f.type === 'map' && f.keyDoc) out += `- keys: ${f.keyDoc}\n`;
  if (f.example !== undefined) out += `- example: \`${name.split('.').pop()} = ${f.example}\`\n`;
  return out + '\n';
}

function subKeys(prefix: string, t: TableField): string {
  let out = '';
  for (const [k, f] of Object.entries(t.fields)) {
    out += keyBlock(`${prefix}${k}`, f);
    if (f.type === 'table') out += subKeys(`${prefix}${k}.`, f);
    if (f.type === 'either' && f.other.type === 'table' && Object.keys(f.other.fields).length > 0) {
      out += subKeys(`${prefix}${k}.`, f.other);
    }
  }
  return out;
}

/** The Markdown of docs/config.md. */
export function renderConfigDocs(): string {
  let out = `# Configuration reference

<!-- Generated from src/config/schema.ts by \`ferrymail config-docs\`. Do not edit by hand. -->

ferrymail reads one TOML file: \`--config FILE\` (\`-c FILE\`) on any subcommand, else \`$FERRYMAIL_CONFIG\`,
else \`./ferrymail.toml\` when it exists, else the embedded default (every key below at its default, paths
relative to the current folder). \`ferrymail check-config\` validates a file without starting anything.

- Unknown keys are errors (with a suggestion when a known key is close).
- Relative paths resolve against the config file's folder.
- Durations are strings: \`"30s"\`, \`"5m"\`, \`"4h"\`, \`"5d"\` (units \`ms\`, \`s\`, \`m\`, \`h\`, \`d\`, \`w\`; parts
  may be joined: \`"1h30m"\`).
- Sizes are bytes: an integer, or a string with a unit: \`"25MB"\` (10⁶), \`"25MiB"\` or \`"25M"\` (2²⁰).

## Example

\`\`\`toml
${EXAMPLE_CONFIG}\`\`\`

## Keys
`;
  const top: [string, Field][] = Object.entries(SCHEMA.fields as Record<string, Field>);
  out += '\n### Top level\n\n';
  for (const [k, f] of top)
    if (f.type !== 'table' && f.type !== 'map' && f.type !== 'list') out += keyBlock(k, f);
  for (const [k, f] of top) {
    if (f.type === 'list' && f.of.type === 'table') {
      out += `### \`[[${k}]]\`\n\n${f.description} Default: \`${inline(f.default)}\`.\n\n${subKeys(`${k}.`, f.of)}`;
    } else if (f.type === 'table') {
      out += `### \`[${k}]\`\n\n${f.description}${f.optional ? ' Optional.' : ''}\n\n${subKeys(`${k}.`, f)}`;
    } else if (f.type === 'map') {
      out += `### \`[${k}]\`\n\n${keyBlock(k, f)}`;
      if (f.of.type === 'either' && f.of.other.type === 'table') out += subKeys(`${k}.<key>.`, f.of.other);
    }
  }
  return out.replace(/\n+$/, '\n');
}
