import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as wait } from 'node:timers/promises';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import { testServices } from '#core/config';
import { isGatewayError } from '#core/errors';
import { systemClock } from '#core/app';
import { runDriverContract } from './contract.ts';
import { createRedisDriver } from './redis.ts';

const { redisUrl, requireServices } = testServices();
const skip = redisUrl === undefined && !requireServices ? 'GATEHOUSE_TEST_REDIS_URL not set' : false;

/** A driver on the test Redis under a fresh key prefix, and per-call options with a deadline. */
function openDriver(keyPrefix = `test:${randomUUID()}:`) {
  assert.ok(redisUrl, 'GATEHOUSE_TEST_REDIS_URL not set');
  return createRedisDriver({ url: redisUrl, clock: systemClock, timeoutMs: 5000, keyPrefix });
}
const o = () => ({ signal: AbortSignal.timeout(5000) });

runDriverContract(
  'redis',
  async () => {
    assert.ok(redisUrl, 'GATEHOUSE_TEST_REDIS_URL not set');
    const driver = createRedisDriver({
      url: redisUrl,
      clock: systemClock,
      timeoutMs: 10_000,
      keyPrefix: `test:${randomUUID()}:`,
    });
    return {
      driver,
      // Redis owns the clock of its expiries; the only way to let a TTL pass is to wait for it.
      advance: (ms) => wait(ms),
      close: () => driver.close(),
    };
  },
  { skip },
);

void test('redis: a connection killed mid-call fails that call with UNAVAILABLE, then the driver recovers', {
  skip,
}, async () => {
  const driver = openDriver();
  assert.ok(redisUrl);
  const admin = new Redis(redisUrl);
  try {
    // Precondition on a Redis shared with other suites: one retry if another suite dropped us.
    await driver
      .set('ns', 'k', new Uint8Array([1]), o())
      .catch(() => driver.set('ns', 'k', new Uint8Array([1]), o()));
    const id = await driver.client.client('ID');
    // Pausing writes holds the driver's next command on the server, so the kill lands mid-call.
    await admin.client('PAUSE', 3000, 'WRITE');
    const started = performance.now();
    // The expectation is attached before the kill: the call can fail before KILL's own answer
    // arrives, and a rejection nobody handles yet fails the test (one run in a dozen here).
    const failed = assert.rejects(
      driver.set('ns', 'k', new Uint8Array([2]), o()),
      (e: unknown) => isGatewayError(e) && e.kind === 'UNAVAILABLE',
    );
    await admin.client('KILL', 'ID', String(id));
    await failed;
    assert.ok(performance.now() - started < 2500, 'the call failed before the pause ended');
    await admin.client('UNPAUSE');
    let recovered = false;
    for (let i = 0; i < 50 && !recovered; i += 1) {
      recovered = await driver.exists('ns', 'k', o()).catch(() => false);
      if (!recovered) await wait(50);
    }
    assert.equal(recovered, true);
  } finally {
    await admin.client('UNPAUSE').catch(() => undefined);
    admin.disconnect();
    await driver.close();
  }
});

void test('redis sweep removes index members of expired keys that no listing touched', { skip }, async () => {
  const keyPrefix = `test:${randomUUID()}:`;
  const driver = openDriver(keyPrefix);
  try {
    await driver.set('ns', 'short', new Uint8Array([1]), { ...o(), ttlMs: 30 });
    await driver.set('ns', 'kept', new Uint8Array([1]), o());
    await driver.set('other', 'short2', new Uint8Array([1]), { ...o(), ttlMs: 30 });
    // Redis owns the expiry clock: wait until it dropped both hashes.
    while ((await driver.client.exists(`${keyPrefix}{ns}:k:short`, `${keyPrefix}{other}:k:short2`)) > 0) {
      await wait(20);
    }
    assert.equal(await driver.client.zcard(`${keyPrefix}{ns}:idx`), 2);
    assert.equal(await driver.sweep(), 2);
    assert.deepEqual(await driver.client.zrange(`${keyPrefix}{ns}:idx`, '0', '-1'), ['kept']);
    assert.equal(await driver.sweep(), 0);
  } finally {
    await driver.close();
  }
});

void test('redis: a listing past a long run of expired index members resumes where its walk stopped', {
  skip,
}, async () => {
  const keyPrefix = `test:${randomUUID()}:`;
  const driver = openDriver(keyPrefix);
  try {
    // 2500 index members whose entries expired (an index member outlives its hash until a
    // listing or the sweeper drops it), then one live key after them in byte order.
    await driver.set('ns', 'b-live', new Uint8Array([1]), o());
    const members: (string | number)[] = [];
    for (let i = 0; i < 2500; i += 1) members.push(0, `a-${String(i).padStart(4, '0')}`);
    await driver.client.zadd(`${keyPrefix}{ns}:idx`, ...members);
    // Page size 1: the script examines two members per round, 2000 in its 1000 rounds.
    const first = await driver.list('ns', '', { ...o(), limit: 1 });
    assert.deepEqual(first.keys, []);
    assert.equal(first.more, true, 'a walk cut short is not the end of the listing');
    assert.ok(first.resumeAfter !== undefined && first.resumeAfter < 'b-live', first.resumeAfter);
    const seen: string[] = [];
    let after: string | undefined = first.resumeAfter;
    for (let pages = 0; pages < 5; pages += 1) {
      const page = await driver.list('ns', '', {
        ...o(),
        limit: 1,
        ...(after === undefined ? {} : { after }),
      });
      seen.push(...page.keys);
      if (!page.more) break;
      after = page.resumeAfter ?? page.keys.at(-1);
    }
    assert.deepEqual(seen, ['b-live']);
    // The walks dropped every expired member they passed.
    assert.deepEqual(await driver.client.zrange(`${keyPrefix}{ns}:idx`, '0', '-1'), ['b-live']);
  } finally {
    await driver.close();
  }
});

void test('redis: concurrent calls of one event-loop turn leave in one socket write, each gets its own answer', {
  skip,
}, async () => {
  const driver = openDriver();
  try {
    await driver.set('ns', 'warm', new Uint8Array([0]), o());
    // Count what reaches the socket: one `_write` per uncorked write, one `_writev` per batch.
    const socket = driver.client.stream as unknown as {
      _write: (...a: unknown[]) => unknown;
      _writev: (...a: unknown[]) => unknown;
    };
    let writes = 0;
    const write = socket._write;
    const writev = socket._writev;
    socket._write = function (...a) {
      writes += 1;
      return write.apply(this, a);
    };
    socket._writev = function (...a) {
      writes += 1;
      return writev.apply(this, a);
    };
    const n = 20;
    const versions = await Promise.all(
      Array.from({ length: n }, (_, i) => driver.set('ns', `k${i}`, new Uint8Array([i]), o())),
    );
    const entries = await Promise.all(Array.from({ length: n }, (_, i) => driver.get('ns', `k${i}`, o())));
    socket._write = write;
    socket._writev = writev;
    assert.ok(writes <= 4, `${2 * n} commands took ${writes} socket writes`);
    assert.equal(new Set(versions).size, n);
    entries.forEach((e, i) => assert.deepEqual([...(e?.value ?? [])], [i]));
  } finally {
    await driver.close();
  }
});

void test('redis: a batch of writes is one script call, in order, with consecutive versions', {
  skip,
}, async () => {
  const driver = openDriver();
  try {
    const calls: string[] = [];
    const callBuffer = driver.client.callBuffer.bind(driver.client);
    driver.client.callBuffer = ((command: string, ...rest: unknown[]) => {
      calls.push(command);
      return (callBuffer as (...a: unknown[]) => unknown)(command, ...rest);
    }) as typeof driver.client.callBuffer;
    const items = Array.from({ length: 50 }, (_, i) => ({
      key: i === 49 ? 'k0' : `k${i}`,
      value: new Uint8Array([i]),
      ...(i % 2 === 0 ? { ttlMs: 60_000 } : {}),
    }));
    const versions = await driver.setMany('batch', items, o());
    assert.deepEqual(calls, ['EVALSHA']);
    versions.forEach((v, i) => assert.equal(v, (versions[0] ?? 0) + i));
    // The last write of k0 wins, with its own (later) version and no TTL.
    const [k0, k1, k2] = await driver.getMany('batch', ['k0', 'k1', 'k2'], { ...o(), maxBytes: 1024 });
    assert.deepEqual([...(k0?.value ?? [])], [49]);
    assert.equal(k0?.version, versions[49]);
    assert.equal(k0?.expiresAt, undefined);
    assert.equal(k1?.expiresAt, undefined);
    assert.ok((k2?.expiresAt ?? 0) > Date.now());
    const page = await driver.list('batch', 'k', { ...o(), limit: 100 });
    assert.equal(page.keys.length, 49, 'every distinct key is in the index');
    // More members than Lua's unpack takes at once (about 8000 values, two per item).
    const large = Array.from({ length: 5000 }, (_, i) => ({ key: `big-${i}`, value: new Uint8Array([1]) }));
    const bigVersions = await driver.setMany('large', large, o());
    assert.equal(bigVersions.length, 5000);
    let listed = 0;
    let after: string | undefined;
    for (let pages = 0; pages < 10; pages += 1) {
      const next = await driver.list('large', 'big-', {
        ...o(),
        limit: 1000,
        ...(after === undefined ? {} : { after }),
      });
      listed += next.keys.length;
      after = next.resumeAfter ?? next.keys.at(-1);
      if (!next.more) break;
    }
    assert.equal(listed, 5000, 'every key of a large batch is listed');
  } finally {
    await driver.close();
  }
});
