import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, resolveSecret, verifyPassword } from '../../src/config/password.js';
import { checkSecret } from '../../src/config/values.js';

describe('passwords', () => {
  it('hash then verify', async () => {
    const h = await hashPassword('correct horse', { N: 1024 });
    assert.match(h, /^scrypt:1024:8:1:/);
    assert.equal(checkSecret(h), undefined);
    assert.equal(await verifyPassword(h, 'correct horse'), true);
    assert.equal(await verifyPassword(h, 'wrong'), false);
  });
  it('plain entries compare exactly', async () => {
    assert.equal(await verifyPassword('pw', 'pw'), true);
    assert.equal(await verifyPassword('pw', 'pw '), false);
  });
  it('rejects a cost that is not a power of two', async () => {
    await assert.rejects(hashPassword('x', { N: 1000 }), RangeError);
  });
  it('env: and file: references', () => {
    assert.deepEqual(resolveSecret('env:X', { baseDir: '/', env: { X: 'v' } }), { value: 'v' });
    assert.ok('error' in resolveSecret('env:Y', { baseDir: '/', env: {} }));
    assert.deepEqual(resolveSecret('plain', { baseDir: '/', env: {} }), { value: 'plain' });
  });
});
