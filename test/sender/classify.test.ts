import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReply } from '../../src/smtp/reply.js';
import { classify, toOutcome, failureText, type Decision } from '../../src/sender/classify.js';
import type { Failure } from '../../src/sender/failure.js';

const rep = (stage: Extract<Failure, { kind: 'reply' }>['stage'], wire: string): Failure => ({
  kind: 'reply',
  stage,
  reply: parseReply(wire),
});

test('classify: host trouble moves on (defer at the last host); message trouble defers or bounces', () => {
  const table: [Failure, Decision, Decision][] = [
    // failure, not last host, last host
    [{ kind: 'connect', error: 'ECONNREFUSED' }, 'next-host', 'defer'],
    [{ kind: 'timeout', stage: 'greeting' }, 'next-host', 'defer'],
    [{ kind: 'lost', stage: 'helo' }, 'next-host', 'defer'],
    [rep('greeting', '421 4.3.2 busy'), 'next-host', 'defer'],
    [rep('greeting', '450 not now'), 'next-host', 'defer'],
    [rep('greeting', '554 no SMTP service here'), 'next-host', 'defer'],
    [rep('helo', '550 go away'), 'next-host', 'defer'],
    [rep('auth', '535 5.7.8 bad credentials'), 'next-host', 'defer'],
    [{ kind: 'security', stage: 'starttls', status: '4.7.10', text: 'no TLS' }, 'next-host', 'defer'],
    [rep('mail', '421 4.4.2 closing'), 'next-host', 'defer'],
    [rep('rcpt', '421 4.4.2 closing'), 'next-host', 'defer'],
    [{ kind: 'timeout', stage: 'mail' }, 'next-host', 'defer'],
    [rep('mail', '451 4.3.0 try later'), 'defer', 'defer'],
    [rep('mail', '550 5.7.1 sender rejected'), 'bounce', 'bounce'],
    [rep('rcpt', '450 4.2.1 greylisted'), 'defer', 'defer'],
    [rep('rcpt', '550 5.1.1 <x@y>: Recipient address rejected'), 'bounce', 'bounce'],
    [rep('data', '554 5.5.1 no'), 'bounce', 'bounce'],
    [rep('data-end', '552 5.3.4 too big'), 'bounce', 'bounce'],
    [rep('data-end', '451 4.3.0 queue trouble'), 'defer', 'defer'],
    [{ kind: 'lost', stage: 'data-end' }, 'defer', 'defer'],
    [{ kind: 'timeout', stage: 'rcpt' }, 'defer', 'defer'],
    [{ kind: 'local', reply: parseReply('550 5.6.7 SMTPUTF8 required') }, 'bounce', 'bounce'],
  ];
  for (const [f, notLast, last] of table) {
    assert.equal(classify(f, { lastHost: false }), notLast, JSON.stringify(f));
    assert.equal(classify(f, { lastHost: true }), last, JSON.stringify(f));
  }
});

test('toOutcome keeps the peer reply text, the enhanced status and the host', () => {
  const o = toOutcome(
    3,
    { kind: 'failed', failure: rep('rcpt', '550 5.1.1 <x@y>: Recipient address rejected') },
    { lastHost: false, host: 'mx1.example.test' },
  );
  assert.deepEqual(o, {
    index: 3,
    result: 'failed',
    reply: '550 5.1.1 <x@y>: Recipient address rejected',
    status: '5.1.1',
    remoteMta: 'mx1.example.test',
    decision: 'bounce',
  });
  const d = toOutcome(
    0,
    { kind: 'delivered', reply: parseReply('250 2.0.0 Ok: queued as ABC') },
    { lastHost: true, host: 'h' },
  );
  assert.equal(d.result, 'delivered');
  assert.equal(d.status, '2.0.0');
  assert.equal(d.reply, '250 2.0.0 Ok: queued as ABC');
});

test('deferred outcomes carry a 4.x.x status, even for a skipped 5xx greeting; missing enhanced codes default to X.0.0', () => {
  const o = toOutcome(
    0,
    { kind: 'failed', failure: rep('greeting', '554 5.7.1 go away') },
    { lastHost: true, host: 'h' },
  );
  assert.equal(o.result, 'deferred');
  assert.equal(o.status, '4.7.1');
  const p = toOutcome(
    0,
    { kind: 'failed', failure: rep('rcpt', '550 no such user') },
    { lastHost: true, host: 'h' },
  );
  assert.equal(p.status, '5.0.0');
  const r = toOutcome(
    0,
    { kind: 'retry', reply: parseReply('452 4.5.3 too many') },
    { lastHost: true, host: 'h' },
  );
  assert.equal(r.result, 'deferred');
});

test('synthesised texts for failures without a reply', () => {
  assert.equal(
    failureText({ kind: 'connect', error: 'ECONNREFUSED' }, 'mx.test'),
    '451 4.4.1 cannot connect to mx.test: ECONNREFUSED',
  );
  assert.equal(
    failureText({ kind: 'timeout', stage: 'data-end' }, 'mx.test'),
    '451 4.4.2 timeout waiting for the data-end reply from mx.test',
  );
  assert.equal(
    failureText({ kind: 'security', stage: 'starttls', status: '4.7.10', text: 'no TLS' }, 'mx.test'),
    '451 4.7.10 no TLS',
  );
});
