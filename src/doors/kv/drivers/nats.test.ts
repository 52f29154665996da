import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as wait } from 'node:timers/promises';
import { jetstream } from '@nats-io/jetstream';
import { Bucket, type KV, Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { testServices } from '#core/config';
import { isGatewayError } from '#core/errors';
import { closedPort } from '#testing/services';
import { listDuring, runDriverContract } from './contract.ts';
import { createNatsDriver, type NatsDriverOptions } from './nats.ts';

const { natsUrl, requireServices } = testServices();
const skip = natsUrl === undefined && !requireServices ? 'GATEHOUSE_TEST_NATS_URL not set' : false;
let now = 1_700_000_000_000;
const clock = { now: () => now };
const bucket = `test_${randomUUID().replaceAll('-', '')}`;

/** A driver on the test NATS server and bucket `name` (10 s backend deadline unless overridden). */
function openDriver(name: string, overrides: Partial<NatsDriverOptions> = {}) {
  assert.ok(natsUrl, 'GATEHOUSE_TEST_NATS_URL not set');
  return createNatsDriver({ url: natsUrl, clock, timeoutMs: 10_000, bucket: name, ...overrides });
}

/** Runs `fn` on a fresh driver of bucket `name`, then deletes the bucket. */
async function withDriver(
  name: string,
  fn: (driver: ReturnType<typeof openDriver>) => Promise<void>,
  overrides: Partial<NatsDriverOptions> = {},
): Promise<void> {
  const driver = openDriver(name, overrides);
  try {
    await fn(driver);
    await driver.destroy();
  } finally {
    await driver.close();
  }
}

/** Per-call options with a deadline of `ms`. */
const within = (ms = 10_000) => ({ signal: AbortSignal.timeout(ms) });

/** Runs `fn` on bucket `name` through a connection of the test's own. */
async function onBucket<T>(name: string, fn: (kv: KV) => Promise<T>): Promise<T> {
  assert.ok(natsUrl);
  const nc = await connect({ servers: natsUrl });
  try {
    return await fn(await new Kvm(jetstream(nc)).open(name));
  } finally {
    await nc.close();
  }
}

/** The keys of bucket `name` that match `filter`. */
function bucketKeys(name: string, filter: string): Promise<string[]> {
  return onBucket(name, async (kv) => {
    const out: string[] = [];
    for await (const k of await kv.keys(filter)) out.push(k);
    return out;
  });
}

runDriverContract(
  'nats',
  async () => {
    const driver = openDriver(bucket);
    return {
      driver,
      advance: async (ms) => {
        now += ms;
      },
      close: async () => {
        await driver.destroy();
        await driver.close();
      },
    };
  },
  { skip },
);

void test('nats sweep purges expired heads and their chunks', { skip }, async () => {
  await withDriver(`${bucket}_sweep`, async (driver) => {
    const o = within();
    await driver.set('ns', 'big', new Uint8Array(3 * 1024 * 1024), { ...o, ttlMs: 10 });
    await driver.set('ns', 'kept', new Uint8Array([1]), o);
    now += 11;
    assert.equal(await driver.sweep(), 1);
    assert.equal(await driver.sweep(), 0);
    assert.equal(await driver.exists('ns', 'kept', o), true);
  });
});

void test('nats sweep removes the markers of deleted keys once old, never a write that came after', {
  skip,
}, async () => {
  const name = `${bucket}_markers`;
  /** The bucket's subjects holding anything (records or markers), from the stream's index. */
  const subjects = async () => {
    assert.ok(natsUrl);
    const nc = await connect({ servers: natsUrl });
    try {
      const jsm = await jetstream(nc).jetstreamManager();
      const info = await jsm.streams.info(`KV_${name}`, { subjects_filter: `$KV.${name}.h.>` });
      return Object.keys(info.state.subjects ?? {}).length;
    } finally {
      await nc.close();
    }
  };
  await withDriver(
    name,
    async (driver) => {
      const o = within();
      for (let i = 0; i < 5; i += 1) await driver.set('ns', `gone-${i}`, new Uint8Array([i]), o);
      const before = await driver.set('ns', 'back', new Uint8Array([1]), o);
      for (let i = 0; i < 5; i += 1) assert.equal(await driver.delete('ns', `gone-${i}`, o), true);
      assert.equal(await driver.delete('ns', 'back', o), true);
      // Re-created after its delete: a record, not a marker, on that subject.
      const after = await driver.set('ns', 'back', new Uint8Array([2]), o);
      assert.ok(after > before, 'versions keep increasing across delete and re-create');
      assert.equal(await subjects(), 6, 'five markers and one record');
      await driver.sweep();
      assert.equal(await subjects(), 1, 'the markers are gone');
      assert.deepEqual([...((await driver.get('ns', 'back', o))?.value ?? [])], [2]);
      assert.deepEqual((await driver.list('ns', '', { ...o, limit: 100 })).keys, ['back']);
      // A key whose marker is gone is written, read and versioned as a new one.
      const again = await driver.set('ns', 'gone-0', new Uint8Array([9]), { ...o, expectedVersion: 0 });
      assert.ok(again > after);
      assert.equal((await driver.get('ns', 'gone-0', o))?.version, again);
    },
    { orphanChunkAgeMs: 0 },
  );
});

void test('nats: a value that fits one message only without its metadata is chunked, not refused', {
  skip,
}, async () => {
  await withDriver(`${bucket}_fit`, async (driver) => {
    const o = within();
    // 64 KiB of metadata whose every character JSON escapes (\" pairs): about 128 KiB of
    // envelope header beside a 940 KiB value, which alone fits the default 1 MiB max_payload.
    const metadata = `"${'\\"'.repeat(32 * 1024 - 1)}"`;
    assert.ok(metadata.length <= 64 * 1024);
    const value = new Uint8Array(940 * 1024).fill(9);
    const version = await driver.set('ns', 'near', value, { ...o, metadata });
    const got = await driver.get('ns', 'near', o);
    assert.equal(got?.version, version);
    assert.equal(got?.metadata, metadata);
    assert.ok(Buffer.from(got?.value ?? []).equals(Buffer.from(value)));
  });
});

void test('nats: racing writes of large values leave only the chunks of the head that won', {
  skip,
}, async () => {
  const name = `${bucket}_race`;
  await withDriver(
    name,
    async (driver) => {
      const o = within(20_000);
      const values = Array.from({ length: 4 }, (_, i) => new Uint8Array(2_500_000).fill(i + 1));
      const versions = await Promise.all(values.map((v) => driver.set('ns', 'big', v, o)));
      const got = await driver.get('ns', 'big', o);
      assert.equal(got?.version, Math.max(...versions));
      const winner = values.find((v) => Buffer.from(v).equals(Buffer.from(got?.value ?? [])));
      assert.ok(winner !== undefined, 'the value read is one of the values written');
      // 2.5 MB in chunks of just under 1 MiB: three chunk records, those of the winner only.
      assert.equal((await bucketKeys(name, 'c.ns.>')).length, 3);
      await driver.delete('ns', 'big', o);
      assert.deepEqual(await bucketKeys(name, 'c.ns.>'), []);
    },
    { timeoutMs: 20_000 },
  );
});

void test('nats: a listing during a sweep of expired heads holds every other key exactly once', {
  skip,
}, async () => {
  await withDriver(`${bucket}_sweeplist`, async (driver) => {
    for (let round = 0; round < 3; round += 1) {
      const keys = Array.from({ length: 400 }, (_, i) => `e-${String(i).padStart(4, '0')}`);
      // Even keys expire, odd keys stay; the sweep purges the even heads while the lists run.
      await driver.setMany(
        'ns',
        keys.map((key, i) => ({
          key,
          value: new Uint8Array([i % 256]),
          ...(i % 2 === 0 ? { ttlMs: 1000 } : {}),
        })),
        within(),
      );
      const kept = keys.filter((_, i) => i % 2 === 1);
      now += 1001;
      const sweep = driver.sweep();
      // A few listings per sweep: each slows the sweep down, and the sweep is what they race.
      const { problems, lists } = await listDuring(
        sweep,
        () => driver.list('ns', 'e-', { ...within(), limit: 1000 }),
        { kept, may: [] },
        { min: 2, max: 8 },
      );
      assert.equal(await sweep, 200);
      assert.deepEqual(
        problems.slice(0, 5),
        [],
        `round ${round}: ${problems.length} of ${lists} listings were wrong`,
      );
    }
  });
});

void test('nats sweep purges chunks no head names once they are old enough', { skip }, async () => {
  const name = `${bucket}_orphans`;
  const young = openDriver(name);
  const old = openDriver(name, { orphanChunkAgeMs: 0 });
  const o = within();
  try {
    await young.set('ns', 'big', new Uint8Array(1_500_000).fill(1), o);
    // A writer that died between its chunks and its head left these.
    await onBucket(name, async (kv) => {
      await kv.put(`c.ns.${'ab'.repeat(16)}.0`, new Uint8Array([1]));
      await kv.put(`c.ns.${'ab'.repeat(16)}.1`, new Uint8Array([2]));
    });
    assert.equal((await bucketKeys(name, 'c.ns.>')).length, 4);
    // Younger than ten minutes: a writer may still be about to name them.
    assert.equal(await young.sweep(), 0);
    // Unnamed in two sweeps in a row: the first marks them, the second purges them.
    assert.equal(await old.sweep(), 0);
    assert.equal((await bucketKeys(name, 'c.ns.>')).length, 4);
    assert.equal(await old.sweep(), 2);
    assert.equal((await bucketKeys(name, 'c.ns.>')).length, 2);
    assert.equal((await young.get('ns', 'big', o))?.value.length, 1_500_000);
    await young.destroy();
  } finally {
    await young.close();
    await old.close();
  }
});

/** The head subject of `key` in namespace `ns` (the driver's layout). */
const headOf = (ns: string, key: string) => `h.${ns}.${Buffer.from(key).toString('hex')}`;
const FOREIGN = new TextEncoder().encode('not an envelope');

/** Asserts that `call` fails with the given gateway error code. */
async function failsWith(code: string, call: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(isGatewayError(error) && error.code === code, `${what}: ${String(error)}`);
    return true;
  });
}
const dataLoss = (call: Promise<unknown>, what: string) => failsWith('GW_ERR_KV_DATA_CORRUPT', call, what);
const unavailable = (call: Promise<unknown>, what: string) =>
  failsWith('GW_ERR_KV_BACKEND_UNAVAILABLE', call, what);

void test('nats: a head that does not decode is DATA_LOSS to reads and compare-and-set, listed, deleted by Delete and replaced by a plain write', {
  skip,
}, async () => {
  const name = `${bucket}_corrupt`;
  await withDriver(name, async (driver) => {
    const o = within();
    await driver.set('ns', 'ok', new Uint8Array([1]), o);
    await onBucket(name, (kv) => kv.put(headOf('ns', 'foreign'), FOREIGN));
    await dataLoss(driver.get('ns', 'foreign', o), 'get');
    await dataLoss(driver.exists('ns', 'foreign', o), 'exists');
    await dataLoss(driver.ttl('ns', 'foreign', o), 'ttl');
    await dataLoss(driver.expire('ns', 'foreign', 1000, o), 'expire');
    await dataLoss(driver.persist('ns', 'foreign', o), 'persist');
    await dataLoss(driver.getMany('ns', ['ok', 'foreign'], { ...o, maxBytes: 1024 }), 'getMany');
    // "Only if absent" and any other expected version: the version is unknown, as Get says.
    await dataLoss(
      driver.set('ns', 'foreign', new Uint8Array([2]), { ...o, expectedVersion: 0 }),
      'set if absent',
    );
    await dataLoss(
      driver.set('ns', 'foreign', new Uint8Array([2]), { ...o, expectedVersion: 1 }),
      'set at version 1',
    );
    const raw = await onBucket(name, (kv) => kv.get(headOf('ns', 'foreign')));
    assert.deepEqual(raw?.value, FOREIGN, 'a refused compare-and-set left the record');
    // Listed, neither hidden nor failing the page.
    assert.deepEqual(await driver.list('ns', '', { ...o, limit: 10 }), {
      keys: ['foreign', 'ok'],
      more: false,
    });
    assert.deepEqual(await driver.list('ns', '', { ...o, limit: 1 }), { keys: ['foreign'], more: true });
    assert.deepEqual(await driver.list('ns', '', { ...o, limit: 10, after: 'foreign' }), {
      keys: ['ok'],
      more: false,
    });
    // Delete removes it and says so; then the key is absent everywhere.
    assert.equal(await driver.delete('ns', 'foreign', o), true);
    assert.equal(await driver.get('ns', 'foreign', o), undefined);
    assert.equal(await driver.exists('ns', 'foreign', o), false);
    assert.equal(await driver.delete('ns', 'foreign', o), false);
    assert.deepEqual(await bucketKeys(name, 'h.ns.>'), [headOf('ns', 'ok')]);
    const version = await driver.set('ns', 'foreign', new Uint8Array([3]), { ...o, expectedVersion: 0 });
    assert.equal((await driver.get('ns', 'foreign', o))?.version, version);
    // A plain write (Set, BatchSet) is a blind write: it replaces an unreadable record.
    for (const write of [
      () => driver.set('ns', 'foreign', new Uint8Array([4]), o),
      async () => (await driver.setMany('ns', [{ key: 'foreign', value: new Uint8Array([4]) }], o))[0],
    ]) {
      await onBucket(name, (kv) => kv.put(headOf('ns', 'foreign'), FOREIGN));
      const written = await write();
      const got = await driver.get('ns', 'foreign', o);
      assert.equal(got?.version, written);
      assert.deepEqual([...(got?.value ?? [])], [4]);
    }
  });
});

void test('nats: Delete of an unreadable head that named chunks removes it, and the sweeper collects the chunks', {
  skip,
}, async () => {
  const name = `${bucket}_corrupt_chunks`;
  const sweeper = openDriver(name, { orphanChunkAgeMs: 0 });
  try {
    await withDriver(name, async (driver) => {
      const o = within();
      await driver.set('ns', 'big', new Uint8Array(1_500_000).fill(1), o);
      await driver.set('ns', 'kept', new Uint8Array(1_500_000).fill(2), o);
      assert.equal((await bucketKeys(name, 'c.ns.>')).length, 4);
      await onBucket(name, async (kv) => {
        await kv.put(headOf('ns', 'big'), FOREIGN);
        // Subjects no key maps to (not the hex of a key): another writer's, never listed, and
        // they do not stop the sweep from collecting orphans.
        await kv.put('h.ns.zz', FOREIGN);
        await kv.put('h.ns.6b.6b', FOREIGN);
      });
      assert.deepEqual(await driver.list('ns', '', { ...o, limit: 10 }), {
        keys: ['big', 'kept'],
        more: false,
      });
      assert.equal(await driver.delete('ns', 'big', o), true);
      // Its chunks cannot be known from an unreadable head: they stay for the sweeper.
      assert.equal((await bucketKeys(name, 'c.ns.>')).length, 4);
      assert.equal(await sweeper.sweep(), 0);
      assert.equal(await sweeper.sweep(), 2);
      assert.equal((await bucketKeys(name, 'c.ns.>')).length, 2);
      assert.equal((await driver.get('ns', 'kept', o))?.value.length, 1_500_000);
    });
  } finally {
    await sweeper.close();
  }
});

void test('nats: a failed read before a delete, a write or in a listing is an error, not "absent"', {
  skip,
}, async (t) => {
  const name = `${bucket}_broken`;
  await withDriver(name, async (driver) => {
    const o = within();
    await driver.set('ns', 'k', new Uint8Array([1]), o);
    // Every read of the driver goes through a connection that is closed: the library's own
    // immediate error, not a timeout.
    const nc = await connect({ servers: natsUrl ?? '' });
    const broken = await new Kvm(jetstream(nc)).open(name);
    await nc.close();
    const read = broken.get.bind(broken);
    const mocked = t.mock.method(Bucket.prototype, 'get', (key: string) => read(key));
    const started = performance.now();
    await unavailable(driver.delete('ns', 'k', o), 'delete');
    await unavailable(driver.delete('ns', 'absent', o), 'delete of an absent key');
    await unavailable(driver.list('ns', '', { ...o, limit: 10 }), 'list');
    await unavailable(driver.set('ns', 'k', new Uint8Array([2]), o), 'set');
    await unavailable(
      driver.set('ns', 'k', new Uint8Array([2]), { ...o, expectedVersion: 0 }),
      'set if absent',
    );
    assert.ok(performance.now() - started < 5000, 'the errors came before the deadline');
    assert.ok(mocked.mock.callCount() >= 5);
    mocked.mock.restore();
    assert.deepEqual([...((await driver.get('ns', 'k', o))?.value ?? [])], [1], 'nothing was deleted');
  });
});

void test('nats: a Delete that races a write deletes the new head with its chunks (last-revision check)', {
  skip,
}, async (t) => {
  const name = `${bucket}_delrace`;
  const other = openDriver(name);
  try {
    await withDriver(name, async (driver) => {
      const o = within();
      await driver.set('ns', 'k', new Uint8Array([1]), o);
      // Between the Delete's read and its first purge, another gateway stores a chunked value.
      const mocked = t.mock.method(
        Bucket.prototype,
        'purge',
        async function (this: KV, ...args: Parameters<KV['purge']>) {
          mocked.mock.restore();
          await other.set('ns', 'k', new Uint8Array(1_500_000), o);
          return this.purge(...args);
        },
      );
      assert.equal(await driver.delete('ns', 'k', o), true);
      assert.equal(await driver.get('ns', 'k', o), undefined);
      assert.deepEqual(await bucketKeys(name, 'c.ns.>'), [], "the new head's chunks went with it");
    });
  } finally {
    await other.close();
  }
});

const NATS_SERVER = '/usr/sbin/nats-server';
const ownServer =
  skip !== false
    ? skip
    : !existsSync(NATS_SERVER) && !requireServices
      ? `${NATS_SERVER} not installed`
      : false;

/** Waits until every thread of process `pid` is stopped (SIGSTOP delivered to all of them). */
async function stopped(pid: number | undefined): Promise<void> {
  assert.ok(pid !== undefined);
  // A thread's state follows its name in parentheses: `tid (comm) T ...`.
  const state = (tid: string) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      return stat.charAt(stat.lastIndexOf(')') + 2);
    } catch {
      return 'T'; // A thread that exited between the listing and the read serves nothing.
    }
  };
  for (let i = 0; i < 100; i += 1) {
    if (readdirSync(`/proc/${pid}/task`).every((tid) => state(tid) === 'T')) return;
    await wait(20);
  }
  assert.fail(`process ${pid} did not stop`);
}

/** A nats-server of the test's own (JetStream on `dir`), listening on `port` once resolved. */
async function startNatsServer(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  for (let i = 0; i < 100 && !log.includes('Server is ready'); i += 1) {
    if (child.exitCode !== null) break;
    await wait(50);
  }
  assert.ok(log.includes('Server is ready'), `nats-server did not start: ${log.slice(-500)}`);
  return child;
}

void test('nats: a server that stops mid-call fails that call with UNAVAILABLE, and the driver recovers when it returns', {
  skip: ownServer,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-nats-'));
  const port = await closedPort();
  let server = await startNatsServer(port, dir);
  const driver = createNatsDriver({
    url: `nats://127.0.0.1:${port}`,
    clock,
    timeoutMs: 10_000,
    bucket: 'fault',
  });
  try {
    // Setup (connect, create the bucket on a fresh file store) gets a generous deadline.
    const version = await driver.set('ns', 'k', new Uint8Array([7]), within(15_000));
    // Frozen: the connection stays open and nothing answers, so the call waits on its deadline.
    // The stop is waited for (state T in /proc), so the call leaves only once nothing can answer.
    server.kill('SIGSTOP');
    await stopped(server.pid);
    const started = performance.now();
    const frozen = await driver.get('ns', 'k', within(1000)).then(
      (entry) => assert.fail(`a frozen server answered: ${JSON.stringify(entry?.version)}`),
      (error: unknown) => error,
    );
    assert.ok(isGatewayError(frozen) && frozen.code === 'GW_ERR_KV_BACKEND_UNAVAILABLE', String(frozen));
    assert.ok(performance.now() - started < 3000, 'the call ended at its deadline');
    server.kill('SIGKILL');
    await new Promise((r) => server.once('exit', r));
    // Down: calls fail fast, nothing hangs.
    await assert.rejects(driver.get('ns', 'k', within(1000)));
    server = await startNatsServer(port, dir);
    let entry: Awaited<ReturnType<typeof driver.get>>;
    for (let i = 0; i < 100 && entry === undefined; i += 1) {
      entry = await driver.get('ns', 'k', within(1000)).catch(() => undefined);
      if (entry === undefined) await wait(100);
    }
    assert.equal(entry?.version, version, 'the driver reconnected and reads what JetStream kept');
  } finally {
    await driver.close();
    server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
