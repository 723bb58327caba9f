/**
 * @module policy/users
 * Local users and aliases: is this local recipient known, what does it expand to, and which
 * Maildir folder receives it. Pure.
 *
 * - Users are local parts (`alice`, known in every local domain) or full addresses
 *   (`alice@example.test`, known in that domain only). No list (or an empty one) means every local
 *   part is accepted. `postmaster` is always known (RFC 5321 §4.5.1), in any letter case.
 * - Alias keys are `local` (every local domain) or `local@domain`; targets are local parts (same
 *   domain as the address being expanded) or full addresses, local or remote. Expansion is
 *   recursive for local targets, stops at a loop (an alias that names itself, directly or not, is
 *   delivered to its own mailbox) and at MAX_ALIAS_DEPTH levels.
 * - `+detail` (configurable separator; `''` turns it off) is stripped for lookups and folder names;
 *   an address whose detail-less form is known is known. Lookups are case-insensitive unless
 *   `caseSensitive`; the original address, case and detail kept, is what delivery records.
 * - Folder names never leave the mail tree: a name that is empty, starts with a dot, or holds `/`,
 *   `\`, NUL or another control character gets 550 5.1.3 instead of a path.
 */
import { mailboxToString, type Mailbox } from '../smtp/types.js';
import { parseMailbox } from '../smtp/address.js';

export interface LocalUsersConfig {
  users?: readonly string[];
  aliases?: Readonly<Record<string, string | readonly string[]>>;
  /** @default false */
  caseSensitive?: boolean;
  /** @default '+' */
  detailSeparator?: string;
}

/** Which domains are ours (a DomainPolicy fits). */
export interface LocalDomainTest {
  isLocal(domainAscii: string): boolean;
}

export type UserCheck = { ok: true } | { ok: false; code: 550; enhanced: '5.1.1'; text: string };

export type MailboxFolder =
  { ok: true; domain: string; user: string } | { ok: false; code: 550; enhanced: '5.1.3'; text: string };

/** Alias chains longer than this stop and deliver to the mailbox reached. */
export const MAX_ALIAS_DEPTH = 10;
/** One alias expansion yields at most this many addresses; the rest are not expanded further. */
export const MAX_ALIAS_RESULTS = 1000;

/** A parsed alias target: a full mailbox, or a local part that takes the expanded address's domain. */
type Target = { kind: 'full'; mailbox: Mailbox } | { kind: 'bare'; local: string; localValue: string };

export class LocalUsers {
  readonly #caseSensitive: boolean;
  readonly #separator: string;
  readonly #domains: LocalDomainTest;
  /** Keys are `user` (any local domain) or `user@domainascii`, user in lookup form. */
  readonly #users: ReadonlySet<string>;
  readonly #aliases: ReadonlyMap<string, readonly Target[]>;

  /** @throws RangeError naming a user, alias key or alias target that is not an address. */
  constructor(config: LocalUsersConfig, domains: LocalDomainTest) {
    if (config === null || typeof config !== 'object') {
      throw new TypeError('Cannot build LocalUsers: config must be an object');
    }
    this.#caseSensitive = config.caseSensitive ?? false;
    const sep = config.detailSeparator ?? '+';
    if (typeof sep !== 'string' || /[@"\s]/.test(sep)) {
      throw new RangeError(
        `Invalid detailSeparator ${JSON.stringify(sep)}: must be a string without '@', '"' or spaces`,
      );
    }
    this.#separator = sep;
    this.#domains = domains;

    const users = new Set<string>();
    for (const u of config.users ?? []) users.add(this.#keyOf(parseEntry(u, 'user'), 'user', u));
    this.#users = users;

    const aliases = new Map<string, Target[]>();
    for (const [k, v] of Object.entries(config.aliases ?? {})) {
      const key = this.#keyOf(parseEntry(k, 'alias'), 'alias', k);
      const list = typeof v === 'string' ? [v] : v;
      if (!Array.isArray(list) || list.length === 0) {
        throw new RangeError(`Invalid alias ${JSON.stringify(k)}: needs at least one target address`);
      }
      aliases.set(
        key,
        list.map((t: unknown) => parseTarget(t, k)),
      );
    }
    this.#aliases = aliases;
  }

  /** Is this recipient (in a local domain) known? Aliases and postmaster are. */
  check(m: Mailbox): UserCheck {
    if (this.#isPostmaster(m) || this.isAlias(m) || this.#users.size === 0) return { ok: true };
    const domain = m.domainAscii.toLowerCase();
    for (const user of this.#lookupForms(m.localValue)) {
      if (this.#users.has(user) || this.#users.has(`${user}@${domain}`)) return { ok: true };
    }
    return { ok: false, code: 550, enhanced: '5.1.1', text: 'No such user here' };
  }

  /** True when an alias applies to this address. */
  isAlias(m: Mailbox): boolean {
    return this.#aliasTargets(m) !== undefined;
  }

  /**
   * The final addresses for a recipient, in `local@domain` form (local part in wire form). An
   * address no alias applies to comes back exactly as given; remote addresses are never expanded.
   */
  expand(m: Mailbox): string[] {
    const out: string[] = [];
    const seen = new Set<string>();
    const emit = (x: Mailbox): void => {
      const id = this.#identity(x);
      if (!seen.has(id) && out.length < MAX_ALIAS_RESULTS) {
        seen.add(id);
        out.push(mailboxToString(x));
      }
    };
    const walk = (x: Mailbox, depth: number, path: ReadonlySet<string>): void => {
      const id = this.#identity(x);
      const targets = this.#domains.isLocal(x.domainAscii) ? this.#aliasTargets(x) : undefined;
      if (
        targets === undefined ||
        path.has(id) ||
        depth >= MAX_ALIAS_DEPTH ||
        out.length >= MAX_ALIAS_RESULTS
      ) {
        emit(x);
        return;
      }
      const next = new Set(path).add(id);
      for (const t of targets) walk(resolveTarget(t, x), depth + 1, next);
    };
    walk(m, 0, new Set());
    return out;
  }

  /** The Maildir folder (`<domain>/<user>` under the mail root) for a local mailbox. */
  mailboxFolder(m: Mailbox): MailboxFolder {
    const domain = m.domainAscii.toLowerCase();
    const user = this.#isPostmaster(m) ? 'postmaster' : this.#norm(this.#stripDetail(m.localValue));
    if (!safeName(domain) || !safeName(user)) {
      return { ok: false, code: 550, enhanced: '5.1.3', text: 'Mailbox name not allowed here' };
    }
    return { ok: true, domain, user };
  }

  #norm(local: string): string {
    return this.#caseSensitive ? local : local.toLowerCase();
  }

  #stripDetail(localValue: string): string {
    if (this.#separator === '') return localValue;
    const i = localValue.indexOf(this.#separator);
    // `+tag` alone is a name, not an empty user with a detail.
    return i > 0 ? localValue.slice(0, i) : localValue;
  }

  /** The local part as given, then without its detail: the forms tried for lookups. */
  #lookupForms(localValue: string): string[] {
    const full = this.#norm(localValue);
    const base = this.#norm(this.#stripDetail(localValue));
    return base === full ? [full] : [full, base];
  }

  #isPostmaster(m: Mailbox): boolean {
    return this.#stripDetail(m.localValue).toLowerCase() === 'postmaster';
  }

  #aliasTargets(m: Mailbox): readonly Target[] | undefined {
    const domain = m.domainAscii.toLowerCase();
    for (const user of this.#lookupForms(m.localValue)) {
      const t = this.#aliases.get(`${user}@${domain}`) ?? this.#aliases.get(user);
      if (t !== undefined) return t;
    }
    return undefined;
  }

  /** Same identity, same mailbox: detail and (unless case-sensitive) case do not matter locally. */
  #identity(m: Mailbox): string {
    const domain = m.domainAscii.toLowerCase();
    if (!this.#domains.isLocal(domain)) return `remote:${m.localValue}@${domain}`;
    return `local:${this.#norm(this.#stripDetail(m.localValue))}@${domain}`;
  }

  #keyOf(e: Target, what: string, raw: string): string {
    if (e.kind === 'bare') return this.#norm(e.localValue);
    if (!this.#domains.isLocal(e.mailbox.domainAscii)) {
      throw new RangeError(
        `Invalid ${what} ${JSON.stringify(raw)}: ${e.mailbox.domain} is not a local domain`,
      );
    }
    return `${this.#norm(e.mailbox.localValue)}@${e.mailbox.domainAscii}`;
  }
}

function parseEntry(raw: unknown, what: string): Target {
  if (typeof raw === 'string') {
    const m = parseMailbox(raw, { utf8: true });
    if (m !== null) return { kind: 'full', mailbox: m };
    // A bare local part: let the one RFC 5321 parser judge it, under a placeholder domain.
    const bare = parseMailbox(`${raw}@localhost`, { utf8: true });
    if (bare !== null && bare.local === raw) return { kind: 'bare', local: raw, localValue: bare.localValue };
  }
  throw new RangeError(`Invalid ${what} ${JSON.stringify(raw)}: not a local part or an address`);
}

function parseTarget(raw: unknown, key: string): Target {
  try {
    return parseEntry(raw, 'target');
  } catch (cause) {
    throw new RangeError(
      `Invalid alias ${JSON.stringify(key)}: target ${JSON.stringify(raw)} is not an address`,
      {
        cause,
      },
    );
  }
}

function resolveTarget(t: Target, from: Mailbox): Mailbox {
  if (t.kind === 'full') return t.mailbox;
  return {
    ...from,
    local: t.local,
    localValue: t.localValue,
    utf8: /[^\x00-\x7f]/.test(t.local + from.domain),
  };
}

/** A single path component that stays inside its parent directory. */
function safeName(name: string): boolean {
  if (name.length === 0 || name.startsWith('.')) return false;
  if (/[/\\\x00-\x1f\x7f]/.test(name)) return false;
  return Buffer.byteLength(name, 'utf8') <= 255;
}
