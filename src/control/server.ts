/**
 * @module control/server
 * The running server's control socket: a unix socket (mode 0600) at `<data_dir>/control.sock` answering
 * JSON-lines requests (control/protocol.ts) with the handlers main.ts gives it. Requests on one connection
 * are answered in order. A stale socket file left by a crash is replaced; a live one is an error.
 */
import { chmod, lstat, unlink } from 'node:fs/promises';
import net from 'node:net';
import {
  ControlError,
  MAX_LINE_BYTES,
  MAX_SOCKET_PATH,
  parseRequest,
  type ControlHandlers,
  type ControlRequest,
  type ControlResponse,
} from './protocol.js';

export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

export async function startControlServer(
  socketPath: string,
  handlers: ControlHandlers,
): Promise<ControlServer> {
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    throw new RangeError(
      `Cannot start the control socket: the path must be at most ${MAX_SOCKET_PATH} bytes: current value is ${socketPath} (use a shorter data_dir)`,
    );
  }
  await clearStale(socketPath);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    serveConnection(sock, handlers);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(socketPath, () => {
      server.off('error', fail);
      ok();
    });
  });
  await chmod(socketPath, 0o600);
  let closed: Promise<void> | undefined;
  return {
    path: socketPath,
    close() {
      closed ??= new Promise<void>((ok) => {
        server.close(() => ok());
        for (const s of sockets) s.destroy();
      });
      return closed;
    },
  };
}

async function clearStale(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new ControlError(
      'CONTROL_IN_USE',
      `${path} exists and is not a socket; remove it or change data_dir`,
    );
  }
  const alive = await new Promise<boolean>((ok) => {
    const c = net.connect(path);
    c.once('connect', () => {
      c.destroy();
      ok(true);
    });
    c.once('error', () => ok(false));
  });
  if (alive)
    throw new ControlError(
      'CONTROL_IN_USE',
      `another ferrymail is running with this data_dir (${path} answers)`,
    );
  await unlink(path);
}

function serveConnection(sock: net.Socket, handlers: ControlHandlers): void {
  let buf = '';
  let chain = Promise.resolve();
  sock.setEncoding('utf8');
  sock.on('error', () => sock.destroy());
  sock.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim() === '') continue;
      chain = chain
        .then(() => answer(line, handlers))
        .then((res) => {
          if (!sock.destroyed) sock.write(JSON.stringify(res) + '\n');
        });
    }
    if (buf.length > MAX_LINE_BYTES) {
      sock.end(
        JSON.stringify({
          id: 0,
          ok: false,
          error: { code: 'CONTROL_PROTOCOL', message: 'request too long' },
        }) + '\n',
      );
      buf = '';
    }
  });
}

async function answer(line: string, handlers: ControlHandlers): Promise<ControlResponse> {
  let req: ControlRequest;
  try {
    req = parseRequest(line);
  } catch (err) {
    const e = err as ControlError;
    return { id: idOf(line), ok: false, error: { code: e.code, message: e.message } };
  }
  try {
    return { id: req.id, ok: true, result: (await dispatch(req, handlers)) ?? null };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return {
      id: req.id,
      ok: false,
      error: {
        code: typeof code === 'string' ? code : 'INTERNAL',
        message: err instanceof Error ? err.message : String(err),
      },
    };
  }
}

function dispatch(req: ControlRequest, h: ControlHandlers): Promise<unknown> | unknown {
  switch (req.op) {
    case 'list':
      return h.list();
    case 'show':
      return h.show(req.msgId);
    case 'flush':
      return h.flush();
    case 'remove':
      return h.remove(req.ids);
    case 'status':
      return h.status();
  }
}

function idOf(line: string): number {
  try {
    const v = (JSON.parse(line) as { id?: unknown }).id;
    return typeof v === 'number' ? v : 0;
  } catch {
    return 0;
  }
}
