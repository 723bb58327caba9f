import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXAMPLE_CONFIG, renderConfigDocs } from '../../src/config/docs.js';
import { parseConfig } from '../../src/config/load.js';
import { SCHEMA } from '../../src/config/schema.js';
import type { Field } from '../../src/config/dsl.js';

/** The repository root, from the test's own place (test/config or dist/test/config). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test');
    dir = up;
  }
  return dir;
}

describe('docs/config.md', () => {
  it('is what the schema generates (run `ferrymail config-docs > docs/config.md` after changing the schema)', () => {
    const committed = readFileSync(join(repoRoot(), 'docs', 'config.md'), 'utf8');
    assert.equal(committed, renderConfigDocs());
  });

  it('documents every key of the schema', () => {
    const docs = renderConfigDocs();
    const walk = (prefix: string, fields: Record<string, Field>) => {
      for (const [k, f] of Object.entries(fields)) {
        const name = `${prefix}${k}`;
        assert.ok(docs.includes(`\`${name}\``) || docs.includes(`[${name}]`), `docs lack ${name}`);
        assert.ok(f.description.length > 0 || prefix.includes('<key>'), `${name} has no description`);
        if (f.type === 'table') walk(`${name}.`, f.fields);
        if (f.type === 'list' && f.of.type === 'table') walk(`${name}.`, f.of.fields);
      }
    };
    walk('', SCHEMA.fields);
  });

  it('the example config in the docs is valid', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferrymail-docs-'));
    try {
      await mkdir(join(dir, 'tls'));
      await writeFile(join(dir, 'tls', 'cert.pem'), '');
      await writeFile(join(dir, 'tls', 'key.pem'), '');
      const c = parseConfig(EXAMPLE_CONFIG, 'example.toml', dir, {
        hostname: 'h.test',
        env: { ALICE_PASSWORD: 'pw' },
      });
      assert.equal(c.hostname, 'mx.example.test');
      assert.equal(c.listeners.length, 2);
      assert.equal(c.tls?.cert, join(dir, 'tls', 'cert.pem'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('every default in the schema passes its own validation (the empty config loads)', () => {
    assert.doesNotThrow(() => parseConfig('', 'empty.toml', '/', { hostname: 'h.test' }));
  });
});
