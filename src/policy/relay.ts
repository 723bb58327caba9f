/**
 * @module policy/relay
 * Accept this RCPT or not (DESIGN invariant 4: no open relay). Pure.
 *
 * The decision reads the parsed forward-path only: the Mailbox left after the source route is
 * dropped (RFC 5321 §3.3, App. C). Nothing is pattern-matched, so the old tricks land where the
 * grammar puts them: `user%other@local`, `"user@other"@local` and `other!user@local` are local
 * parts of a local domain (delivered here, never forwarded by us); `<@other:user@local>` is local;
 * `user@[stranger-ip]` is a remote domain. Local and relay domains are accepted from anyone; any
 * other domain only from the relay networks or an authenticated client.
 */
import type { Path, Mailbox } from '../smtp/types.js';
import type { CidrList } from './cidr.js';
import type { DomainPolicy } from './domains.js';
import type { LocalUsers } from './users.js';

export interface RcptContext {
  /** The client's address as the socket reports it (IPv4-mapped IPv6 is fine). */
  clientIp: string;
  /** Set once AUTH succeeded. */
  authUser?: string;
  relayNetworks: CidrList;
}

export type RcptKind = 'local' | 'relay' | 'remote';

export interface RcptRefusal {
  accept: false;
  code: number;
  enhanced: string;
  text: string;
}

export type RcptDecision = { accept: true; kind: RcptKind } | RcptRefusal;

/** The client may send to any domain: it is in the relay networks, or authenticated. */
export function mayRelay(ctx: RcptContext): boolean {
  return (ctx.authUser !== undefined && ctx.authUser !== '') || ctx.relayNetworks.contains(ctx.clientIp);
}

/** Decide one RCPT by its domain alone (users are LocalUsers' business: see decideLocalRcpt). */
export function decideRcpt(ctx: RcptContext, rcpt: Path, policy: DomainPolicy): RcptDecision {
  if (rcpt.kind === 'postmaster') return { accept: true, kind: 'local' };
  if (rcpt.kind === 'null') {
    return { accept: false, code: 553, enhanced: '5.1.3', text: 'The null path is not a valid recipient' };
  }
  const kind = policy.classify(rcpt.mailbox);
  if (kind !== 'remote' || mayRelay(ctx)) return { accept: true, kind };
  return { accept: false, code: 550, enhanced: '5.7.1', text: 'Relay access denied' };
}

/**
 * decideRcpt, then for local recipients the user check (550 5.1.1) and the mailbox-name check
 * (550 5.1.3), so that a recipient the receiver accepts can always be delivered to a Maildir.
 */
export function decideLocalRcpt(
  ctx: RcptContext,
  rcpt: Path,
  policy: DomainPolicy,
  users: LocalUsers,
): RcptDecision {
  const d = decideRcpt(ctx, rcpt, policy);
  if (!d.accept || d.kind !== 'local' || rcpt.kind !== 'mailbox') return d;
  const m: Mailbox = rcpt.mailbox;
  const known = users.check(m);
  if (!known.ok) return { accept: false, code: known.code, enhanced: known.enhanced, text: known.text };
  // An alias needs no folder of its own; only mailboxes that are delivered to need a safe name.
  if (users.isAlias(m)) return d;
  const folder = users.mailboxFolder(m);
  if (!folder.ok) return { accept: false, code: folder.code, enhanced: folder.enhanced, text: folder.text };
  return d;
}
