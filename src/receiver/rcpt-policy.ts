/**
 * @module receiver/rcpt-policy
 * Adapts the pure policy decisions (policy/relay.ts, policy/users.ts) to the Session's hook.
 */
import { reply } from '../smtp/reply.js';
import type { Path } from '../smtp/types.js';
import { decideLocalRcpt } from '../policy/relay.js';
import type { CidrList } from '../policy/cidr.js';
import type { DomainPolicy } from '../policy/domains.js';
import type { LocalUsers } from '../policy/users.js';
import type { SessionPolicy, RcptDecision } from './session.js';

export function rcptPolicy(domains: DomainPolicy, users: LocalUsers, relayNetworks: CidrList): SessionPolicy {
  return {
    rcpt(ctx: { clientIp: string; authUser?: string; sender: Path }, rcpt: Path): RcptDecision {
      const d = decideLocalRcpt(
        { clientIp: ctx.clientIp, relayNetworks, ...(ctx.authUser !== undefined ? { authUser: ctx.authUser } : {}) },
        rcpt,
        domains,
        users,
      );
      if (d.accept) return { accept: true };
      return { accept: false, reply: reply(d.code, d.enhanced, d.text) };
    },
  };
}
