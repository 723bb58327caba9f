/**
 * @module control/protocol
 * The control socket's language: one JSON object per line each way. A request carries an `id` the
 * response repeats, so a client may send several before reading. Shared by control/server and
 * control/client; no I/O here.
 */
import type { QueuedMessage } from '../queue/types.js';

export type ControlRequest =
  | { id: number; op: 'list' }
  | { id: number; op: 'show'; msgId: string }
  | { id: number; op: 'flush' }
  | { id: number; op: 'remove'; ids: string[] }
  | { id: number; op: 'status' };

export type ControlOp = ControlRequest['op'];

export type ControlResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: string; message: string } };

/** What the running server answers with; main.ts wires these to the queue and scheduler. */
export interface ControlHandlers {
  list(): Promise<QueuedMessage[]>;
  /** `undefined` when there is no such message. */
  show(id: string): Promise<QueuedMessage | undefined>;
  /** Make every pending recipient due now; resolves with the number of messages affected. */
  flush(): Promise<number>;
  remove(ids: string[]): Promise<{ removed: string[]; missing: string[] }>;
  /** Anything JSON-serialisable: uptime, version, queue size, listeners. */
  status(): object | Promise<object>;
}

/** sun_path holds 108 bytes with the terminating NUL on Linux (104 on the BSDs). */
export const MAX_SOCKET_PATH = 107;

/** Longest request or response line accepted (a `list` of a big queue is one line). */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;

/**
 * Codes: `CONTROL_NOT_RUNNING` (nothing listens on the socket), `CONTROL_TIMEOUT`, `CONTROL_IN_USE` (another
 * server owns the socket), `CONTROL_PROTOCOL` (a malformed line), or a code the server sent back.
 */
export class ControlError extends Error {
  override readonly name = 'ControlError';
  constructor(
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Parse and shape-check one request line; throws ControlError(`CONTROL_PROTOCOL`). */
export function parseRequest(line: string): ControlRequest {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (err) {
    throw new ControlError('CONTROL_PROTOCOL', 'request is not JSON', { cause: err });
  }
  if (typeof v !== 'object' || v === null)
    throw new ControlError('CONTROL_PROTOCOL', 'request is not an object');
  const r = v as Record<string, unknown>;
  if (typeof r['id'] !== 'number') throw new ControlError('CONTROL_PROTOCOL', 'request has no numeric id');
  const id = r['id'];
  switch (r['op']) {
    case 'list':
    case 'flush':
    case 'status':
      return { id, op: r['op'] };
    case 'show':
      if (typeof r['msgId'] !== 'string')
        throw new ControlError('CONTROL_PROTOCOL', 'show needs a string msgId');
      return { id, op: 'show', msgId: r['msgId'] };
    case 'remove': {
      const ids = r['ids'];
      if (!Array.isArray(ids) || !ids.every((x) => typeof x === 'string')) {
        throw new ControlError('CONTROL_PROTOCOL', 'remove needs ids: string[]');
      }
      return { id, op: 'remove', ids: ids as string[] };
    }
    default:
      throw new ControlError('CONTROL_PROTOCOL', `unknown op ${JSON.stringify(r['op'])}`);
  }
}
