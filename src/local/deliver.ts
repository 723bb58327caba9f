/**
 * @module local/deliver
 * The Transport for hop kind `local`: each requested recipient gets its own Maildir copy of the
 * queued message, preceded by `Return-Path: <sender>` and `Delivered-To: <recipient as given>`
 * (DESIGN, public contract); every other byte is the stored message, unchanged. The body Buffer is
 * shared by all recipients (only the small header block is per recipient).
 *
 * Outcomes, one per recipient, never a rejection for delivery trouble:
 * - delivered: `250 2.0.0 delivered to maildir`, once the file is durable in `new/`;
 * - failed (permanent): the address does not parse or names no safe folder (`550 5.1.3`), or the
 *   sender holds a line break (`550 5.1.7`: it would forge headers);
 * - deferred (the queue retries): EDQUOT `452 4.2.2 mailbox full`, ENOSPC `452 4.3.1`, and every
 *   other file-system error `451 4.3.0`. Unknown errors defer rather than bounce: a local problem
 *   (permissions, a full disk) is the admin's to fix, and the queue's expiry still bounds it.
 *
 * Aliases are expanded before routing (the dispatcher calls expandRecipient); this transport only
 * sees final local addresses.
 */
import type { NextHop, DeliveryRequest, Transport } from '../delivery/types.js';
import type { RecipientOutcome } from '../queue/types.js';
import type { Mailbox } from '../smtp/types.js';
import { parseMailbox } from '../smtp/address.js';
import type { LocalUsers } from '../policy/users.js';
import { errorCode, type MaildirWriter } from './maildir.js';

export interface LocalTransportOptions {
  writer: MaildirWriter;
  users: LocalUsers;
  /**
   * The domain for a recipient given as bare `postmaster` (RFC 5321 §4.1.1.3 `<Postmaster>`), e.g.
   * the first local domain. Without it such a recipient fails with 550 5.1.3.
   */
  postmasterDomain?: string;
}

/**
 * The final addresses an envelope recipient expands to; an unparseable address stands for itself.
 * A bare `postmaster` is expanded as `postmaster@<postmasterDomain>` when that is given.
 */
export function expandRecipient(users: LocalUsers, address: string, postmasterDomain?: string): string[] {
  const m = parseAddress(address, postmasterDomain);
  return m === null ? [address] : users.expand(m);
}

/** Mailbox writes in flight per message. */
const LOCAL_PARALLEL = 8;

export class LocalTransport implements Transport {
  readonly #writer: MaildirWriter;
  readonly #users: LocalUsers;
  readonly #postmasterDomain: string | undefined;

  constructor(options: LocalTransportOptions) {
    if (!options?.writer || !options.users) {
      throw new TypeError('Cannot build a LocalTransport: writer and users are required');
    }
    this.#writer = options.writer;
    this.#users = options.users;
    this.#postmasterDomain = options.postmasterDomain;
  }

  expandRecipient(address: string): string[] {
    return expandRecipient(this.#users, address, this.#postmasterDomain);
  }

  async deliver(hop: NextHop, req: DeliveryRequest): Promise<RecipientOutcome[]> {
    if (hop.kind !== 'local') {
      throw new TypeError(`LocalTransport delivers hop kind 'local' only: current value is '${hop.kind}'`);
    }
    // Several mailboxes at once: each write waits mostly on its fsyncs, which the disk overlaps.
    // Outcomes keep the order of the request.
    const out: RecipientOutcome[] = new Array(req.recipients.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < req.recipients.length) {
        const k = next++;
        const r = req.recipients[k] as DeliveryRequest['recipients'][number];
        out[k] = await this.#deliverOne(req, r.index, r.address);
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOCAL_PARALLEL, req.recipients.length) }, worker));
    return out;
  }

  async #deliverOne(req: DeliveryRequest, index: number, address: string): Promise<RecipientOutcome> {
    if (hasLineBreak(req.envelope.sender)) {
      return outcome(index, 'failed', 550, '5.1.7', 'bad sender address syntax for local delivery');
    }
    const m = parseAddress(address, this.#postmasterDomain);
    if (m === null)
      return outcome(index, 'failed', 550, '5.1.3', 'bad recipient address syntax for local delivery');
    const folder = this.#users.mailboxFolder(m);
    if (!folder.ok) return outcome(index, 'failed', folder.code, folder.enhanced, folder.text);
    const header = Buffer.from(
      `Return-Path: <${req.envelope.sender}>\r\nDelivered-To: ${address}\r\n`,
      'utf8',
    );
    try {
      await this.#writer.deliver(folder.domain, folder.user, [header, req.message]);
      return outcome(index, 'delivered', 250, '2.0.0', 'delivered to maildir');
    } catch (err) {
      return failureOutcome(index, err);
    }
  }
}

function parseAddress(address: string, postmasterDomain: string | undefined): Mailbox | null {
  if (typeof address !== 'string' || hasLineBreak(address)) return null;
  if (postmasterDomain !== undefined && address.toLowerCase() === 'postmaster') {
    return parseMailbox(`${address}@${postmasterDomain}`, { utf8: true });
  }
  return parseMailbox(address, { utf8: true });
}

/** A CR or LF would end the header line early: such an address never reaches a header. */
function hasLineBreak(s: string): boolean {
  return /[\r\n]/.test(s);
}

function failureOutcome(index: number, err: unknown): RecipientOutcome {
  const code = errorCode(err);
  switch (code) {
    case 'EDQUOT':
      return outcome(index, 'deferred', 452, '4.2.2', 'mailbox full');
    case 'ENOSPC':
      return outcome(index, 'deferred', 452, '4.3.1', 'insufficient system storage');
    case 'ENAMETOOLONG':
      return outcome(index, 'failed', 550, '5.1.3', 'mailbox name too long');
    default:
      return outcome(
        index,
        'deferred',
        451,
        '4.3.0',
        `local delivery failed (${code ?? 'error'}), will retry`,
      );
  }
}

function outcome(
  index: number,
  result: RecipientOutcome['result'],
  code: number,
  status: string,
  text: string,
): RecipientOutcome {
  return { index, result, reply: `${code} ${status} ${text}`, status };
}
