import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { testServices } from '#core/config';
import { expectStatus, type GrpcError, grpcClient } from './grpc-client.ts';
import { type KvGateway, startKvGateway } from './harness.ts';

const services = testServices();
const missing = [
  services.redisUrl === undefined ? 'GATEHOUSE_TEST_REDIS_URL' : undefined,
  services.postgresUrl === undefined ? 'GATEHOUSE_TEST_POSTGRES_URL' : undefined,
  services.natsUrl === undefined ? 'GATEHOUSE_TEST_NATS_URL' : undefined,
].filter((v) => v !== undefined);
const skip = missing.length > 0 && !services.requireServices ? `${missing.join(', ')} not set` : false;

/** The real Redis, PostgreSQL and NATS servers behind one gateway, one namespace each. */
void describe('kv door on the real backends', { skip }, () => {
  let gw: KvGateway;
  let client: ReturnType<typeof grpcClient>;
  let auth: Record<string, string>;
  const id = randomUUID().slice(0, 8);
  const redisDriver = `redis-${id}`;
  const pgDriver = `pg-${id}`;
  before(async () => {
    gw = await startKvGateway({
      kv: {
        drivers: {
          embedded: { type: 'memory' },
          [redisDriver]: { type: 'redis', url: services.redisUrl, keyPrefix: `kvit:${id}:`, timeout: '2s' },
          [pgDriver]: { type: 'postgres', url: services.postgresUrl, timeout: '5s' },
          nats: { type: 'nats', url: services.natsUrl, keyPrefix: `kvit_${id}` },
        },
        namespaces: { 'on-redis': redisDriver, 'on-postgres': pgDriver, 'on-nats': 'nats' },
      },
    });
    client = grpcClient(gw.url, gw.ca);
    auth = {
      authorization: `Bearer ${await gw.token(['operator:on-redis', 'operator:on-postgres', 'operator:on-nats'])}`,
    };
  });
  after(async () => {
    client?.close();
    await gw?.close();
  });

  void it('pages a Redis listing past a long run of expired keys to its end, through page tokens', async () => {
    // Index members whose hashes expired, as Redis leaves them until a listing or the sweeper
    // drops them; the script's bounded walk passes 2000 of them at page size 1.
    const redis = new Redis(services.redisUrl ?? '');
    try {
      await client.call('Set', { namespace: 'on-redis', key: 'z-live', value: Buffer.from('v') }, auth);
      const members: (string | number)[] = [];
      for (let i = 0; i < 2500; i += 1) members.push(0, `y-${String(i).padStart(4, '0')}`);
      await redis.zadd(`kvit:${id}:{on-redis}:idx`, ...members);
    } finally {
      redis.disconnect();
    }
    const seen: string[] = [];
    let pageToken = '';
    let pages = 0;
    do {
      const page = await client.call<{ keys: string[]; nextPageToken: string }>(
        'List',
        { namespace: 'on-redis', prefix: '', pageSize: 1, pageToken },
        auth,
      );
      seen.push(...page.keys);
      pageToken = page.nextPageToken;
      pages += 1;
    } while (pageToken !== '' && pages < 10);
    assert.ok(seen.includes('z-live'), `listed ${seen.join(', ')} in ${pages} pages`);
    assert.ok(pages >= 2, 'the first page ended at the walk bound');
  });

  for (const ns of ['on-redis', 'on-postgres', 'on-nats']) {
    void it(`routes ${ns} to its driver: write, read, list, compare-and-set`, async () => {
      const big = Buffer.alloc(3 * 1024 * 1024, 7);
      const { version } = await client.call<{ version: string }>(
        'Set',
        { namespace: ns, key: `k-${id}`, value: big },
        auth,
      );
      const got = await client.call<{ entry: { value: Buffer; version: string } }>(
        'Get',
        { namespace: ns, key: `k-${id}` },
        auth,
      );
      assert.equal(got.entry.version, version);
      assert.ok(Buffer.from(got.entry.value).equals(big));
      const page = await client.call<{ keys: string[] }>('List', { namespace: ns, prefix: `k-${id}` }, auth);
      assert.deepEqual(page.keys, [`k-${id}`]);
      await expectStatus(
        client.call(
          'Set',
          { namespace: ns, key: `k-${id}`, value: Buffer.from('x'), expectedVersion: '0' },
          auth,
        ),
        10,
      );
    });
  }

  void it('answers UNAVAILABLE to the call whose Redis connection is killed, then recovers', async () => {
    const admin = new Redis(services.redisUrl ?? '');
    try {
      await client.call('Set', { namespace: 'on-redis', key: 'victim', value: Buffer.from('old') }, auth);
      // Pausing writes holds the gateway's next write on the server, so the kill lands mid-call.
      await admin.client('PAUSE', 3000, 'WRITE');
      const pending = client
        .call('Set', { namespace: 'on-redis', key: 'victim', value: Buffer.from('new') }, auth)
        .then(() => 0)
        .catch((e: GrpcError) => e.code);
      const list = (await admin.client('LIST')) as string;
      const ids = list
        .split('\n')
        .filter((line) => line.includes(`name=gatehouse-kv-${redisDriver} `))
        .map((line) => /id=(\d+)/.exec(line)?.[1]);
      assert.ok(ids.length > 0, 'found the gateway connection');
      for (const cid of ids) await admin.client('KILL', 'ID', String(cid));
      assert.equal(await pending, 14);
      await admin.client('UNPAUSE');
      // Other namespaces never noticed.
      await client.call('Get', { namespace: 'on-postgres', key: 'x' }, auth);
      let value: string | undefined;
      for (let i = 0; i < 50 && value === undefined; i += 1) {
        value = await client
          .call<{ entry?: { value: Buffer } }>('Get', { namespace: 'on-redis', key: 'victim' }, auth)
          .then((r) => Buffer.from(r.entry?.value ?? []).toString())
          .catch(() => undefined);
        if (value === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      // The write that was answered UNAVAILABLE was never applied: the old value is still there.
      assert.equal(value, 'old');
    } finally {
      await admin.client('UNPAUSE').catch(() => undefined);
      admin.disconnect();
    }
  });

  void it('answers UNAVAILABLE to the call whose PostgreSQL session is terminated, then recovers', async () => {
    const admin = new pg.Client({ connectionString: services.postgresUrl });
    await admin.connect();
    try {
      await client.call('Set', { namespace: 'on-postgres', key: 'victim', value: Buffer.from('old') }, auth);
      // A row lock held here makes the gateway's next write of that key wait inside PostgreSQL.
      await admin.query('BEGIN');
      await admin.query(
        `SELECT 1 FROM gatehouse_kv_entries WHERE ns = 'on-postgres' AND key = 'victim' FOR UPDATE`,
      );
      const pending = client
        .call('Set', { namespace: 'on-postgres', key: 'victim', value: Buffer.from('new') }, auth)
        .then(() => 0)
        .catch((e: GrpcError) => e.code);
      let killed = 0;
      for (let i = 0; i < 100 && killed === 0; i += 1) {
        const r = await admin.query(
          `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
           WHERE application_name = $1 AND wait_event_type = 'Lock'`,
          [`gatehouse-kv-${pgDriver}`],
        );
        killed = r.rowCount ?? 0;
        if (killed === 0) await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(killed > 0, 'found the waiting gateway session');
      assert.equal(await pending, 14);
      await admin.query('ROLLBACK');
      const got = await client.call<{ entry?: { value: Buffer } }>(
        'Get',
        { namespace: 'on-postgres', key: 'victim' },
        auth,
      );
      assert.equal(
        Buffer.from(got.entry?.value ?? []).toString(),
        'old',
        'the refused write was not applied',
      );
      await client.call(
        'Set',
        { namespace: 'on-postgres', key: 'victim', value: Buffer.from('again') },
        auth,
      );
    } finally {
      await admin.query('ROLLBACK').catch(() => undefined);
      await admin.end();
    }
  });
});
