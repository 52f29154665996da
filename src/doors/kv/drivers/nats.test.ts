import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as wait } from 'node:timers/promises';
import { isGatewayError } from '#core/errors';
import { test } from 'node:test';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { testServices } from '#core/config';
import { runDriverContract } from './contract.ts';
import { createNatsDriver } from './nats.ts';
import { closedPort } from '#testing/services';

const { natsUrl, requireServices } = testServices();
const skip = natsUrl === undefined && !requireServices ? 'GATEHOUSE_TEST_NATS_URL not set' : false;
let now = 1_700_000_000_000;
const clock = { now: () => now };
const bucket = `test_${randomUUID().replaceAll('-', '')}`;

runDriverContract(
  'nats',
  async () => {
    assert.ok(natsUrl, 'GATEHOUSE_TEST_NATS_URL not set');
    const driver = createNatsDriver({ url: natsUrl, clock, timeoutMs: 10_000, bucket });
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
  assert.ok(natsUrl, 'GATEHOUSE_TEST_NATS_URL not set');
  const driver = createNatsDriver({ url: natsUrl, clock, timeoutMs: 10_000, bucket: `${bucket}_sweep` });
  const o = { signal: AbortSignal.timeout(10_000) };
  try {
    await driver.set('ns', 'big', new Uint8Array(3 * 1024 * 1024), { ...o, ttlMs: 10 });
    await driver.set('ns', 'kept', new Uint8Array([1]), o);
    now += 11;
    assert.equal(await driver.sweep(), 1);
    assert.equal(await driver.sweep(), 0);
    assert.equal(await driver.exists('ns', 'kept', o), true);
    await driver.destroy();
  } finally {
    await driver.close();
  }
});

void test('nats: a value that fits one message only without its metadata is chunked, not refused', {
  skip,
}, async () => {
  assert.ok(natsUrl, 'GATEHOUSE_TEST_NATS_URL not set');
  const driver = createNatsDriver({ url: natsUrl, clock, timeoutMs: 10_000, bucket: `${bucket}_fit` });
  const o = { signal: AbortSignal.timeout(10_000) };
  try {
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
    await driver.destroy();
  } finally {
    await driver.close();
  }
});

/** The keys of a bucket, read with a connection of the test's own. */
async function bucketKeys(name: string, filter: string): Promise<string[]> {
  assert.ok(natsUrl);
  const nc = await connect({ servers: natsUrl });
  try {
    const kv = await new Kvm(jetstream(nc)).open(name);
    const out: string[] = [];
    for await (const k of await kv.keys(filter)) out.push(k);
    return out;
  } finally {
    await nc.close();
  }
}

void test('nats: racing writes of large values leave only the chunks of the head that won', {
  skip,
}, async () => {
  assert.ok(natsUrl, 'GATEHOUSE_TEST_NATS_URL not set');
  const name = `${bucket}_race`;
  const driver = createNatsDriver({ url: natsUrl, clock, timeoutMs: 20_000, bucket: name });
  const o = { signal: AbortSignal.timeout(20_000) };
  try {
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
    await driver.destroy();
  } finally {
    await driver.close();
  }
});

void test('nats sweep purges chunks no head names once they are old enough', { skip }, async () => {
  assert.ok(natsUrl, 'GATEHOUSE_TEST_NATS_URL not set');
  const name = `${bucket}_orphans`;
  const young = createNatsDriver({ url: natsUrl, clock, timeoutMs: 10_000, bucket: name });
  const old = createNatsDriver({ url: natsUrl, clock, timeoutMs: 10_000, bucket: name, orphanChunkAgeMs: 0 });
  const o = { signal: AbortSignal.timeout(10_000) };
  try {
    await young.set('ns', 'big', new Uint8Array(1_500_000).fill(1), o);
    // A writer that died between its chunks and its head left these.
    const nc = await connect({ servers: natsUrl });
    try {
      const kv = await new Kvm(jetstream(nc)).open(name);
      await kv.put(`c.ns.${'ab'.repeat(16)}.0`, new Uint8Array([1]));
      await kv.put(`c.ns.${'ab'.repeat(16)}.1`, new Uint8Array([2]));
    } finally {
      await nc.close();
    }
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

const NATS_SERVER = '/usr/sbin/nats-server';
/** Options of one call with a 1 s deadline. */
const o = () => ({ signal: AbortSignal.timeout(1000) });
const ownServer =
  skip !== false
    ? skip
    : !existsSync(NATS_SERVER) && !requireServices
      ? `${NATS_SERVER} not installed`
      : false;

/** A nats-server of the test's own (JetStream on `dir`), listening on `port` once resolved. */
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
    const version = await driver.set('ns', 'k', new Uint8Array([7]), { signal: AbortSignal.timeout(15_000) });
    // Frozen: the connection stays open and nothing answers, so the call waits on its deadline.
    // The stop is waited for (state T in /proc), so the call leaves only once nothing can answer.
    server.kill('SIGSTOP');
    await stopped(server.pid);
    const started = performance.now();
    const frozen = await driver.get('ns', 'k', o()).then(
      (entry) => assert.fail(`a frozen server answered: ${JSON.stringify(entry?.version)}`),
      (error: unknown) => error,
    );
    assert.ok(isGatewayError(frozen) && frozen.code === 'GW_ERR_KV_BACKEND_UNAVAILABLE', String(frozen));
    assert.ok(performance.now() - started < 3000, 'the call ended at its deadline');
    server.kill('SIGKILL');
    await new Promise((r) => server.once('exit', r));
    // Down: calls fail fast, nothing hangs.
    await assert.rejects(driver.get('ns', 'k', o()));
    server = await startNatsServer(port, dir);
    let entry: Awaited<ReturnType<typeof driver.get>>;
    for (let i = 0; i < 100 && entry === undefined; i += 1) {
      entry = await driver.get('ns', 'k', o()).catch(() => undefined);
      if (entry === undefined) await wait(100);
    }
    assert.equal(entry?.version, version, 'the driver reconnected and reads what JetStream kept');
  } finally {
    await driver.close();
    server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
