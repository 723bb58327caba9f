/**
 * @module receiver/auth
 * The server side of SASL PLAIN (RFC 4616) and LOGIN exchanges inside AUTH (RFC 4954), pure.
 * The session feeds it the client's lines; it answers with a challenge, the decoded credentials,
 * or why the exchange ended. Checking the credentials is the adapter's job.
 */

export type AuthStep =
  | { kind: 'challenge'; text: string }
  | { kind: 'credentials'; user: string; password: string }
  | { kind: 'cancelled' }
  | { kind: 'malformed'; text: string };

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decode(s: string): string | null {
  if (s === '=') return '';
  if (!B64.test(s) || s.length % 4 !== 0) return null;
  return Buffer.from(s, 'base64').toString('utf8');
}

export class AuthExchange {
  private loginUser: string | null = null;

  private constructor(
    private readonly mech: 'PLAIN' | 'LOGIN',
    private readonly initial: string | undefined,
  ) {}

  static start(mech: string, initial: string | undefined): AuthExchange | null {
    const m = mech.toUpperCase();
    if (m !== 'PLAIN' && m !== 'LOGIN') return null;
    return new AuthExchange(m, initial);
  }

  first(): AuthStep {
    if (this.mech === 'PLAIN') {
      return this.initial === undefined ? { kind: 'challenge', text: '' } : this.plain(this.initial);
    }
    if (this.initial !== undefined) return this.respond(this.initial);
    return { kind: 'challenge', text: Buffer.from('Username:').toString('base64') };
  }

  respond(line: string): AuthStep {
    if (line === '*') return { kind: 'cancelled' };
    if (this.mech === 'PLAIN') return this.plain(line);
    const v = decode(line);
    if (v === null) return { kind: 'malformed', text: 'Invalid base64 in AUTH LOGIN response' };
    if (this.loginUser === null) {
      this.loginUser = v;
      return { kind: 'challenge', text: Buffer.from('Password:').toString('base64') };
    }
    return { kind: 'credentials', user: this.loginUser, password: v };
  }

  private plain(b64: string): AuthStep {
    const v = decode(b64);
    if (v === null) return { kind: 'malformed', text: 'Invalid base64 in AUTH PLAIN response' };
    const parts = v.split('\0');
    if (parts.length !== 3)
      return { kind: 'malformed', text: 'AUTH PLAIN needs authzid NUL authcid NUL password' };
    const [authz = '', user = '', password = ''] = parts;
    if (authz !== '' && authz !== user)
      return { kind: 'malformed', text: 'Authorization identity must match' };
    return { kind: 'credentials', user, password };
  }
}
