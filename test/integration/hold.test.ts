/** [queue] hold = true: mail is accepted durably and kept; nothing is delivered until hold is lifted. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { startApp } from '../../src/main.js';
import { createLogger } from '../../src/lib/log.js';
import { Raw } from '../receiver/harness.js';

const conf = (hold: boolean) => `hostname = "mx.example.test"
data_dir = "var"
[[listeners]]
address = "127.0.0.1:0"
mode = "mx"
[domains]
local = ["example.test"]
[queue]
hold = ${hold}
`;

test('hold keeps accepted mail queued; lifting it delivers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrymail-hold-'));
  const logger = createLogger({ level: 'silent' });
  try {
    let app = await startApp(parseConfig(conf(true), 'h.toml', dir), { logger });
    const c = await Raw.connect(app.listeners[0]!.port);
    await c.reply();
    for (const l of ['EHLO c.test', 'MAIL FROM:<a@b.test>', 'RCPT TO:<alice@example.test>', 'DATA'])
      await c.cmd(l);
    assert.match(await c.cmd('Subject: held\r\n\r\nx\r\n.'), /^250 /);
    c.end();
    await new Promise((r) => setTimeout(r, 300));
    const box = join(dir, 'var/mail/example.test/alice/new');
    assert.equal(existsSync(box) ? readdirSync(box).length : 0, 0, 'nothing delivered while held');
    assert.equal((await app.store.list()).length, 1, 'the message is in the queue');
    await app.stop(100);
    app = await startApp(parseConfig(conf(false), 'h.toml', dir), { logger });
    const deadline = Date.now() + 5000;
    while ((!existsSync(box) || readdirSync(box).length === 0) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 25));
    assert.equal(readdirSync(box).length, 1, 'delivered once the hold is lifted');
    await app.stop(100);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
