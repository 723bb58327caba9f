/**
 * @module test/helpers/swaks
 * Drive swaks (Debian's "Swiss Army Knife for SMTP") as an independent client. swaks exits 0 only
 * when the whole transaction was accepted; its transcript (stdout) shows every command and reply.
 */
import { assertPackages } from './interop.js';
import { run, type RunResult } from './proc.js';

export interface SwaksOptions {
  port: number;
  host?: string;
  /** One or more recipients (swaks sends them as separate RCPT commands). */
  to: string | readonly string[];
  from?: string;
  subject?: string;
  /** Body text; CRLF line ends are added by swaks. */
  body?: string;
  helo?: string;
  /** Extra swaks arguments, e.g. ['--tls'], ['--pipeline'], ['--auth', 'PLAIN', ...]. */
  args?: readonly string[];
  timeoutMs?: number;
}

/** Run swaks with the given raw arguments. */
export async function swaks(args: readonly string[], timeoutMs = 20_000): Promise<RunResult> {
  assertPackages('swaks');
  return run('swaks', args, { timeoutMs });
}

/** Send one message; the result's `code` is 0 when it was accepted. */
export async function swaksSend(o: SwaksOptions): Promise<RunResult> {
  const to = typeof o.to === 'string' ? o.to : o.to.join(',');
  const args = [
    '--server',
    `${o.host ?? '127.0.0.1'}:${o.port}`,
    '--helo',
    o.helo ?? 'client.test',
    '--from',
    o.from ?? 'sender@client.test',
    '--to',
    to,
    '--header',
    `Subject: ${o.subject ?? 'swaks test'}`,
    '--body',
    o.body ?? 'swaks test body',
    '--timeout',
    '15',
    ...(o.args ?? []),
  ];
  return swaks(args, o.timeoutMs);
}

/** A failure message for assert: the exit code and the transcript. */
export function swaksTranscript(r: RunResult): string {
  return `swaks exited ${r.code ?? r.signal}\n${r.stdout}\n${r.stderr}`;
}
