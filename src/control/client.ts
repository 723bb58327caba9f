/**
 * @module control/client
 * The CLI's side of the control socket. `connectControl` fails fast with `CONTROL_NOT_RUNNING` when no
 * server listens (ENOENT, ECONNREFUSED), which is how `ferrymail queue` decides to open the queue itself.
 */
import net from 'node:net';
import type { QueuedMessage } from '../queue/types.js';
import {
  ControlError,
  MAX_LINE_BYTES,
  MAX_SOCKET_PATH,
  type ControlOp,
  type ControlResponse,
} from './protocol.js';

export interface ControlClientOptions {
  /** Default 1000 ms. */
  connectTimeoutMs?: number;
  /** Per request; default 120000 ms (a flush or delete of a big queue takes a while). */
  requestTimeoutMs?: number;
}

const NOT_RUNNING = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK', 'ENOTDIR']);

export class ControlClient {
  private nextId = 1;
  private buf = '';
  private readonly waiting = new Map<
    number,
    { ok: (r: ControlResponse) => void; fail: (e: Error) => void }
  >();

  private constructor(
    private readonly sock: net.Socket,
    private readonly requestTimeoutMs: number,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    const failAll = (err: Error) => {
      for (const w of this.waiting.values()) w.fail(err);
      this.waiting.clear();
    };
    sock.on('error', (err) =>
      failAll(new ControlError('CONTROL_PROTOCOL', `control socket error: ${err.message}`, { cause: err })),
    );
    sock.on('close', () =>
      failAll(new ControlError('CONTROL_PROTOCOL', 'the server closed the control socket')),
    );
  }

  static connect(socketPath: string, opts: ControlClientOptions = {}): Promise<ControlClient> {
    const timeout = opts.connectTimeoutMs ?? 1000;
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
      // The server cannot listen there either (control/server.ts refuses), so nothing can be running.
      return Promise.reject(
        new ControlError('CONTROL_NOT_RUNNING', `no control socket: ${socketPath} is too long for one`),
      );
    }
    return new Promise((ok, fail) => {
      const sock = net.connect(socketPath);
      const timer = setTimeout(() => {
        sock.destroy();
        fail(new ControlError('CONTROL_TIMEOUT', `no answer on ${socketPath} within ${timeout} ms`));
      }, timeout);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        ok(new ControlClient(sock, opts.requestTimeoutMs ?? 120_000));
      });
      sock.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const code = err.code ?? '';
        fail(
          NOT_RUNNING.has(code)
            ? new ControlError(
                'CONTROL_NOT_RUNNING',
                `ferrymail is not running (no server on ${socketPath})`,
                { cause: err },
              )
            : new ControlError('CONTROL_PROTOCOL', `cannot connect to ${socketPath}: ${err.message}`, {
                cause: err,
              }),
        );
      });
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    if (this.buf.length > MAX_LINE_BYTES) {
      this.sock.destroy(new Error('response too long'));
      return;
    }
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let res: ControlResponse;
      try {
        res = JSON.parse(line) as ControlResponse;
      } catch {
        continue;
      }
      const w = this.waiting.get(res.id);
      if (w) {
        this.waiting.delete(res.id);
        w.ok(res);
      }
    }
  }

  /** Send one request; resolves with its result or rejects with a ControlError carrying the server's code. */
  async request(op: ControlOp, params: Record<string, unknown> = {}): Promise<unknown> {
    if (this.sock.destroyed || !this.sock.writable) {
      throw new ControlError('CONTROL_PROTOCOL', 'the control connection is closed');
    }
    const id = this.nextId++;
    const res = await new Promise<ControlResponse>((ok, fail) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        fail(new ControlError('CONTROL_TIMEOUT', `no answer to "${op}" within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      this.waiting.set(id, {
        ok: (r) => {
          clearTimeout(timer);
          ok(r);
        },
        fail: (e) => {
          clearTimeout(timer);
          fail(e);
        },
      });
      this.sock.write(JSON.stringify({ ...params, id, op }) + '\n');
    });
    if (!res.ok) throw new ControlError(res.error.code, res.error.message);
    return res.result;
  }

  list(): Promise<QueuedMessage[]> {
    return this.request('list') as Promise<QueuedMessage[]>;
  }
  async show(msgId: string): Promise<QueuedMessage | undefined> {
    return ((await this.request('show', { msgId })) as QueuedMessage | null) ?? undefined;
  }
  flush(): Promise<number> {
    return this.request('flush') as Promise<number>;
  }
  remove(ids: string[]): Promise<{ removed: string[]; missing: string[] }> {
    return this.request('remove', { ids }) as Promise<{ removed: string[]; missing: string[] }>;
  }
  status(): Promise<Record<string, unknown>> {
    return this.request('status') as Promise<Record<string, unknown>>;
  }

  close(): void {
    this.sock.end();
  }
}

/** Connect, or `undefined` when the server is not running. Other failures (timeout, permissions) throw. */
export async function tryConnectControl(
  socketPath: string,
  opts?: ControlClientOptions,
): Promise<ControlClient | undefined> {
  try {
    return await ControlClient.connect(socketPath, opts);
  } catch (err) {
    if (err instanceof ControlError && err.code === 'CONTROL_NOT_RUNNING') return undefined;
    throw err;
  }
}
