import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dispatcher, countReceived } from '../../src/delivery/dispatcher.js';
import type { DeliveryRequest, NextHop, Transport } from '../../src/delivery/types.js';
import type { QueuedMessage, RecipientOutcome } from '../../src/queue/types.js';
import { Router } from '../../src/router/router.js';
import { FakeResolver } from '../router/fake-resolver.js';

const MESSAGE = Buffer.from(
  'Received: from a by b; Fri, 4 Dec 2026 10:00:00 +0000\r\nSubject: hi\r\n\r\nbody\r\n',
);

function queued(addresses: string[], extra: Partial<QueuedMessage['envelope']> = {}): QueuedMessage {
  return {
    envelope: {
      id: 'Q1',
      sender: 'alice@sender.test',
      recipients: addresses.map((address) => ({ address })),
      receivedAt: 0,
      body: '7BIT',
      smtputf8: false,
      ...extra,
    },
    recipients: addresses.map((_, index) => ({ index, status: 'pending', attempts: 0, nextAttemptAt: 0 })),
    size: MESSAGE.length,
  };
}

interface Call {
  hop: NextHop;
  req: DeliveryRequest;
}

/** A transport that records calls and answers per address via `decide` (default: delivered). */
function recorder(decide: (address: string) => Omit<RecipientOutcome, 'index'> = () => ok) {
  const calls: Call[] = [];
  const transport: Transport = {
    async deliver(hop, req) {
      calls.push({ hop, req });
      return req.recipients.map((r) => ({ index: r.index, ...decide(r.address) }));
    },
  };
  return { calls, transport };
}

const ok = { result: 'delivered' as const, reply: '250 2.0.0 ok', status: '2.0.0' };

const resolver = () =>
  new FakeResolver({
    'one.test': { MX: [[10, 'mx.one.test']] },
    'mx.one.test': { A: ['192.0.2.1'] },
    'two.test': { MX: [[10, 'mx.two.test']] },
    'mx.two.test': { A: ['192.0.2.2'] },
  });

function setup(opts: { expand?: (a: string) => string[]; maxReceived?: number; smtp?: Transport } = {}) {
  const local = recorder();
  const smtp = recorder();
  const lmtp = recorder();
  const router = new Router({
    localDomains: ['local.test'],
    routes: {
      'relay.test': '127.0.0.1:2600',
      'relay2.test': '127.0.0.1:2600',
      'lmtp.test': 'lmtp:/run/lmtp',
    },
    resolver: resolver(),
  });
  const d = new Dispatcher({
    router,
    transports: { local: local.transport, smtp: opts.smtp ?? smtp.transport, lmtp: lmtp.transport },
    ...(opts.expand ? { expand: opts.expand } : {}),
    ...(opts.maxReceived ? { maxReceived: opts.maxReceived } : {}),
  });
  return { d, local, smtp, lmtp };
}

test('three recipients on one domain: one transaction with three recipients', async () => {
  const { d, smtp } = setup();
  const msg = queued(['a@one.test', 'b@one.test', 'C@ONE.test']);
  const out = await d.deliver(msg, MESSAGE, [0, 1, 2]);
  assert.equal(smtp.calls.length, 1);
  const call = smtp.calls[0]!;
  assert.equal(call.hop.kind === 'smtp' && call.hop.key, 'mx:one.test');
  assert.deepEqual(call.req.recipients, [
    { index: 0, address: 'a@one.test' },
    { index: 1, address: 'b@one.test' },
    { index: 2, address: 'C@ONE.test' },
  ]);
  assert.equal(call.req.message, MESSAGE);
  assert.deepEqual(
    out.map((o) => [o.index, o.result]),
    [
      [0, 'delivered'],
      [1, 'delivered'],
      [2, 'delivered'],
    ],
  );
});

test('two domains: two transactions; two domains on one route: one transaction', async () => {
  const { d, smtp } = setup();
  await d.deliver(queued(['a@one.test', 'b@two.test', 'c@one.test']), MESSAGE, [0, 1, 2]);
  assert.equal(smtp.calls.length, 2);
  const keys = smtp.calls.map((c) => (c.hop.kind === 'smtp' ? c.hop.key : '')).sort();
  assert.deepEqual(keys, ['mx:one.test', 'mx:two.test']);
  const routed = setup();
  await routed.d.deliver(queued(['a@relay.test', 'b@relay2.test']), MESSAGE, [0, 1]);
  assert.equal(routed.smtp.calls.length, 1);
  assert.equal(routed.smtp.calls[0]!.req.recipients.length, 2);
});

test('only the requested indices are attempted; local, LMTP and SMTP go to their transports', async () => {
  const { d, local, smtp, lmtp } = setup();
  const msg = queued(['x@local.test', 'y@one.test', 'z@lmtp.test', 'w@two.test']);
  const out = await d.deliver(msg, MESSAGE, [0, 1, 2]);
  assert.equal(local.calls.length, 1);
  assert.equal(lmtp.calls.length, 1);
  assert.equal(smtp.calls.length, 1);
  assert.deepEqual(
    out.map((o) => o.index),
    [0, 1, 2],
  );
  assert.equal(lmtp.calls[0]!.hop.kind, 'lmtp');
});

test('outcomes map back to the original indices, with per-recipient results and Remote-MTA', async () => {
  const smtp = recorder((a) =>
    a.startsWith('bad')
      ? { result: 'failed', reply: '550 5.1.1 no such user', status: '5.1.1', remoteMta: 'mx.one.test' }
      : a.startsWith('later')
        ? { result: 'deferred', reply: '452 4.2.2 full', status: '4.2.2' }
        : ok,
  );
  const { d } = setup({ smtp: smtp.transport });
  const out = await d.deliver(queued(['ok@two.test', 'bad@one.test', 'later@one.test']), MESSAGE, [2, 1, 0]);
  assert.deepEqual(out, [
    { index: 2, result: 'deferred', reply: '452 4.2.2 full', status: '4.2.2' },
    {
      index: 1,
      result: 'failed',
      reply: '550 5.1.1 no such user',
      status: '5.1.1',
      remoteMta: 'mx.one.test',
    },
    { index: 0, ...ok },
  ]);
  // The transport saw group-local indices into its own envelope.
  for (const c of smtp.calls) {
    c.req.recipients.forEach((r, i) => {
      assert.equal(r.index, i);
      assert.equal(c.req.envelope.recipients[i]?.address, r.address);
    });
  }
});

test('routing errors become outcomes without a transport call', async () => {
  const { d, smtp } = setup();
  const out = await d.deliver(queued(['a@nowhere.test', 'b@one.test']), MESSAGE, [0, 1]);
  assert.deepEqual(out[0], {
    index: 0,
    result: 'failed',
    reply: '550 5.1.2 domain nowhere.test not found',
    status: '5.1.2',
  });
  assert.equal(out[1]?.result, 'delivered');
  assert.equal(smtp.calls.length, 1);
});

test('aliases: a local recipient expands to local and remote targets, delivered when all are', async () => {
  const expand = (a: string) =>
    a.toLowerCase() === 'team@local.test' ? ['ann@local.test', 'bob@one.test', 'cy@two.test'] : [a];
  const { d, local, smtp } = setup({ expand });
  const msg = queued(['team@local.test', 'solo@local.test']);
  msg.envelope.recipients[0]!.notify = ['SUCCESS'];
  const out = await d.deliver(msg, MESSAGE, [0, 1]);
  assert.deepEqual(
    out.map((o) => [o.index, o.result]),
    [
      [0, 'delivered'],
      [1, 'delivered'],
    ],
  );
  assert.equal(local.calls.length, 1, 'ann and solo share the local transaction');
  assert.deepEqual(
    local.calls[0]!.req.recipients.map((r) => r.address),
    ['ann@local.test', 'solo@local.test'],
  );
  assert.equal(smtp.calls.length, 2);
  const target = local.calls[0]!.req.envelope.recipients[0]!;
  assert.deepEqual(target, {
    address: 'ann@local.test',
    orcpt: 'rfc822;team@local.test',
    notify: ['SUCCESS'],
  });
  assert.deepEqual(local.calls[0]!.req.envelope.recipients[1], { address: 'solo@local.test' });
});

test('aliases: one deferred target defers the recipient; else one failed target fails it; empty fails', async () => {
  const expand = (a: string): string[] =>
    a.startsWith('mixed')
      ? ['good@one.test', 'slow@two.test', 'bad@two.test']
      : a.startsWith('hard')
        ? ['good@one.test', 'bad@two.test']
        : a.startsWith('none')
          ? []
          : [a];
  const smtp = recorder((a) =>
    a.startsWith('slow')
      ? { result: 'deferred', reply: '421 4.4.2 later', status: '4.4.2' }
      : a.startsWith('bad')
        ? { result: 'failed', reply: '550 5.1.1 unknown', status: '5.1.1' }
        : ok,
  );
  const { d } = setup({ expand, smtp: smtp.transport });
  const out = await d.deliver(
    queued(['mixed@local.test', 'hard@local.test', 'none@local.test']),
    MESSAGE,
    [0, 1, 2],
  );
  assert.equal(out[0]?.result, 'deferred');
  assert.equal(out[1]?.result, 'failed');
  assert.match(out[1]!.reply, /^550 5\.1\.1 unknown \(alias target <bad@two\.test>\)$/);
  assert.equal(out[2]?.result, 'failed');
  assert.equal(out[2]?.status, '5.1.1');
});

test('an expand function that throws defers that recipient only', async () => {
  const { d } = setup({
    expand: (a) => {
      if (a.startsWith('boom')) throw new Error('alias file unreadable');
      return [a];
    },
  });
  const out = await d.deliver(queued(['boom@local.test', 'fine@local.test']), MESSAGE, [0, 1]);
  assert.equal(out[0]?.result, 'deferred');
  assert.match(out[0]!.reply, /^451 4\.3\.0 alias expansion failed: alias file unreadable/);
  assert.equal(out[1]?.result, 'delivered');
});

test('too many Received: headers fails every recipient with 5.4.6 and calls no transport', async () => {
  const { d, smtp, local } = setup({ maxReceived: 3 });
  const head = 'Received: x\r\n'.repeat(3) + 'received:\r\n\tfolded\r\nX-Received: not counted\r\n';
  const three = Buffer.from(head + '\r\nReceived: in the body does not count\r\n');
  assert.equal(countReceived(three), 4);
  const out = await d.deliver(queued(['a@one.test', 'b@local.test']), three, [0, 1]);
  assert.deepEqual(out, [
    { index: 0, result: 'failed', reply: '554 5.4.6 too many hops (4 Received: headers)', status: '5.4.6' },
    { index: 1, result: 'failed', reply: '554 5.4.6 too many hops (4 Received: headers)', status: '5.4.6' },
  ]);
  assert.equal(smtp.calls.length + local.calls.length, 0);
  const ok3 = Buffer.from('Received: x\r\n'.repeat(3) + '\r\nbody\r\n');
  assert.equal((await d.deliver(queued(['a@one.test']), ok3, [0]))[0]?.result, 'delivered');
});

test('a transport that throws, or forgets a recipient, gives deferred 451 4.3.0; others unaffected', async () => {
  const throwing: Transport = {
    deliver: async (hop) => {
      if (hop.kind === 'smtp' && hop.key === 'mx:one.test') throw new Error('socket exploded');
      return [];
    },
  };
  const { d } = setup({ smtp: throwing });
  const out = await d.deliver(queued(['a@one.test', 'b@two.test', 'c@local.test']), MESSAGE, [0, 1, 2]);
  assert.deepEqual(out[0], {
    index: 0,
    result: 'deferred',
    reply: '451 4.3.0 smtp transport error: socket exploded',
    status: '4.3.0',
  });
  assert.equal(out[1]?.result, 'deferred');
  assert.match(out[1]!.reply, /^451 4\.3\.0 smtp transport gave no outcome for <b@two\.test>/);
  assert.equal(out[2]?.result, 'delivered');
});

test('groups run in parallel but no more than `concurrency` at once', async () => {
  let running = 0;
  let peak = 0;
  const slow: Transport = {
    async deliver(_hop, req) {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 20));
      running--;
      return req.recipients.map((r) => ({ index: r.index, ...ok }));
    },
  };
  const zone: ConstructorParameters<typeof FakeResolver>[0] = {};
  const addrs: string[] = [];
  for (let i = 0; i < 7; i++) {
    zone[`d${i}.test`] = { A: [`192.0.2.${i + 1}`] };
    addrs.push(`u@d${i}.test`);
  }
  const d = new Dispatcher({
    router: new Router({ localDomains: [], resolver: new FakeResolver(zone) }),
    transports: { local: slow, smtp: slow, lmtp: slow },
    concurrency: 3,
  });
  const out = await d.deliver(
    queued(addrs),
    MESSAGE,
    addrs.map((_, i) => i),
  );
  assert.equal(out.filter((o) => o.result === 'delivered').length, 7);
  assert.equal(peak, 3);
});

test('routes each domain once per attempt; never rejects even when the router does', async () => {
  let lookups = 0;
  const d = new Dispatcher({
    router: {
      route: async (a) => {
        lookups++;
        if (a.endsWith('@evil.test')) throw new Error('router bug');
        return { kind: 'local' };
      },
    },
    transports: { local: recorder().transport, smtp: recorder().transport, lmtp: recorder().transport },
  });
  const out = await d.deliver(
    queued(['a@x.test', 'b@X.test', 'c@evil.test', 'd@evil.test']),
    MESSAGE,
    [0, 1, 2, 3, 9],
  );
  assert.equal(lookups, 2);
  assert.deepEqual(
    out.map((o) => o.result),
    ['delivered', 'delivered', 'deferred', 'deferred', 'deferred'],
  );
  assert.throws(
    () =>
      new Dispatcher({
        router: { route: async () => ({ kind: 'local' }) },
        transports: { local: recorder().transport, smtp: recorder().transport, lmtp: recorder().transport },
        concurrency: 0,
      }),
    RangeError,
  );
});

test('a target reached directly and through an alias gets one copy', async () => {
  const { d, local } = setup({
    expand: (a) => (a.startsWith('team@') ? ['ann@local.test', 'bob@local.test'] : [a]),
  });
  const out = await d.deliver(queued(['team@local.test', 'ann@local.test']), MESSAGE, [0, 1]);
  assert.equal(local.calls.length, 1);
  assert.deepEqual(
    local.calls[0]!.req.recipients.map((r) => r.address),
    ['ann@local.test', 'bob@local.test'],
  );
  assert.deepEqual(
    out.map((o) => o.result),
    ['delivered', 'delivered'],
  );
});

test('deliver is bound: it can be passed around as the scheduler callback', async () => {
  const { d } = setup();
  const fn = d.deliver;
  const out = await fn(queued(['a@one.test']), MESSAGE, [0]);
  assert.equal(out[0]?.result, 'delivered');
});
