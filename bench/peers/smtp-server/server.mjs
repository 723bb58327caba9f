// A durable-accept SMTP server built on nodemailer's smtp-server, as a peer for ferrymail's
// benchmark. usage: node server.mjs PORT SPOOL_DIR
//
// Each message is streamed to SPOOL_DIR/tmp/<id> (envelope as a first JSON line), fsynced and
// renamed into SPOOL_DIR/new/<id>; only then is 250 sent. Like Postfix, one fsync per message
// and no directory fsync (ferrymail also fsyncs the directory: the peer gets the benefit of
// the doubt). There is no delivery.
import { SMTPServer } from 'smtp-server';
import { open, rename, mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

const port = Number(process.argv[2] ?? 26030);
const spool = process.argv[3];
if (!spool) {
  console.error('usage: node server.mjs PORT SPOOL_DIR');
  process.exit(64);
}
const tmpDir = join(spool, 'tmp');
const newDir = join(spool, 'new');
await mkdir(tmpDir, { recursive: true });
await mkdir(newDir, { recursive: true });
let counter = 0;

async function spoolMessage(stream, session) {
  const id = `${Date.now().toString(36)}.${(counter++).toString(36)}.${randomBytes(4).toString('hex')}`;
  const tmp = join(tmpDir, id);
  const fh = await open(tmp, 'wx', 0o600);
  let ok = false;
  try {
    const env = {
      from: session.envelope.mailFrom?.address ?? '',
      to: session.envelope.rcptTo.map((r) => r.address),
    };
    await fh.write(JSON.stringify(env) + '\n');
    for await (const chunk of stream) await fh.write(chunk);
    if (stream.sizeExceeded) throw Object.assign(new Error('message too big'), { responseCode: 552 });
    await fh.sync();
    ok = true;
  } finally {
    await fh.close();
    if (!ok) await unlink(tmp).catch(() => {});
  }
  await rename(tmp, join(newDir, id));
  return id;
}

const server = new SMTPServer({
  name: 'smtp-server.bench.test',
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  logger: false,
  // Node's dns.reverse() ignores /etc/hosts; on loopback it would only wait for a DNS server
  disableReverseLookup: true,
  size: 25 * 1024 * 1024,
  maxClients: 20000,
  onData(stream, session, callback) {
    spoolMessage(stream, session).then(
      (id) => callback(null, `2.0.0 Ok: queued as ${id}`),
      (err) => {
        stream.resume();
        callback(err);
      },
    );
  },
});
server.on('error', (err) => console.error('smtp-server error:', err.message));
const version = createRequire(import.meta.url)('smtp-server/package.json').version;
server.listen(port, '127.0.0.1', () =>
  console.log(`smtp-server ${version} on 127.0.0.1:${port}, spool ${spool}`),
);
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
