/**
 * @module receiver/rcpt-policy
 * Adapts the pure policy decisions (policy/relay.ts, policy/users.ts) to the Session's hook.
 */
import { reply, type Reply } from '../smtp/reply.js';
import { parseMailbox } from '../smtp/address.js';
import type { Path } from '../smtp/types.js';
import { decideLocalRcpt } from '../policy/relay.js';
import type { CidrList } from '../policy/cidr.js';
import type { DomainPolicy } from '../policy/domains.js';
import type { LocalUsers } from '../policy/users.js';
import type { SessionPolicy, RcptDecision } from './session.js';

export function rcptPolicy(
  domains: DomainPolicy,
  users: LocalUsers,
  relayNetworks: CidrList,
  opts: { vrfy?: boolean } = {},
): SessionPolicy {
  return {
    ...(opts.vrfy ? { vrfy: (arg: string) => vrfy(domains, users, arg) } : {}),
    rcpt(ctx: { clientIp: string; authUser?: string; sender: Path }, rcpt: Path): RcptDecision {
      const d = decideLocalRcpt(
        {
          clientIp: ctx.clientIp,
          relayNetworks,
          ...(ctx.authUser !== undefined ? { authUser: ctx.authUser } : {}),
        },
        rcpt,
        domains,
        users,
      );
      if (d.accept) return { accept: true };
      return { accept: false, reply: reply(d.code, d.enhanced, d.text) };
    },
  };
}

/**
 * VRFY when the operator turned it on: a real answer for local users (250 / 550 5.1.1), and 252
 * for everything we cannot verify (RFC 5321 §3.5.3). A bare name is taken as a local user.
 */
function vrfy(domains: DomainPolicy, users: LocalUsers, arg: string): Reply {
  const text = arg.startsWith('<') && arg.endsWith('>') ? arg.slice(1, -1) : arg;
  const first = domains.localDomains[0];
  const full = text.includes('@') || first === undefined ? text : `${text}@${first}`;
  const m = parseMailbox(full, { utf8: true });
  if (m === null) return reply(501, '5.1.3', 'Syntax: VRFY <address>');
  if (!domains.isLocal(m.domainAscii)) {
    return reply(252, '2.5.0', 'Cannot VRFY user, but will accept message and attempt delivery');
  }
  const known = users.check(m);
  if (!known.ok) return reply(550, '5.1.1', `<${full}>: no such user here`);
  return reply(250, '2.1.5', `<${full}>`);
}
