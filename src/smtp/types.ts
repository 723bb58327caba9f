/**
 * @module smtp/types
 * Address shapes shared by the parser (smtp/address.ts), policy/, router/ and local/.
 */

/** A parsed RFC 5321 Mailbox (`Local-part "@" ( Domain / address-literal )`). */
export interface Mailbox {
  /** The local part exactly as on the wire, quotes and quoted-pairs included: `"john smith"`, `User.Name`. */
  local: string;
  /** The local part's value: quotes removed and quoted-pairs decoded (`john smith`). Compare with this. */
  localValue: string;
  /** The domain exactly as given (case kept), or the address literal with brackets: `[192.0.2.1]`. */
  domain: string;
  /** What kind of domain it is. */
  domainKind: 'name' | 'ipv4' | 'ipv6' | 'general';
  /** For names: lowercased A-label (punycode) form, used for routing and comparison. For literals: the address. */
  domainAscii: string;
  /** True when local or domain holds non-ASCII (needs SMTPUTF8). */
  utf8: boolean;
}

/** A reverse-path or forward-path. */
export type Path =
  | { kind: 'null' }
  /** `<Postmaster>` with no domain (RFC 5321 §4.1.1.3); `raw` keeps the case as given. */
  | { kind: 'postmaster'; raw: string }
  /** `route` holds the source-route hops (`@a,@b:`), which are parsed and then ignored (§3.3, App. C). */
  | { kind: 'mailbox'; mailbox: Mailbox; route: string[] };

/** `local@domain` as it travels in envelopes and headers (local part in wire form). */
export function mailboxToString(m: Mailbox): string {
  return `${m.local}@${m.domain}`;
}
