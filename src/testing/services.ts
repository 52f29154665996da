/**
 * Helpers for tests that need a real PostgreSQL, Redis or NATS server. The harness finds the
 * servers through GATEHOUSE_TEST_* variables (read by `testServices()` in core/config); a
 * missing one skips its suites by name, or fails them when GATEHOUSE_TEST_REQUIRE_SERVICES=1.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { type TestServices, testServices } from '#core/config';
import { Redis } from 'ioredis';
import { Client } from 'pg';

/** Options accepted by `describe`/`it` of node:test. */
export interface ServiceTestOptions {
  readonly skip?: string;
}

/** Whether a real service is available to a suite, and how the suite should run. */
export interface ServiceRequirement {
  /** The service name, e.g. `redis`. */
  readonly service: string;
  /** The URL, or undefined when the variable is not set. */
  readonly url: string | undefined;
  /**
   * Options for `describe`/`it`: `{ skip: 'GATEHOUSE_TEST_REDIS_URL not set' }` when the URL is
   * absent and services are optional; `{}` otherwise, so a required but absent service runs the
   * suite and `need()` fails it.
   */
  readonly options: ServiceTestOptions;
  /** The URL; throws when it is absent so a required service fails the test that needs it. */
  need(): string;
}

function requirement(
  service: string,
  variable: string,
  url: string | undefined,
  services: TestServices,
): ServiceRequirement {
  const reason = `${variable} not set`;
  return {
    service,
    url,
    options: url === undefined && !services.requireServices ? { skip: reason } : {},
    need() {
      if (url === undefined) {
        throw new Error(`${reason}, and GATEHOUSE_TEST_REQUIRE_SERVICES=1 requires "${service}"`);
      }
      return url;
    },
  };
}

/** The real PostgreSQL server of the test harness (GATEHOUSE_TEST_POSTGRES_URL). */
export function requirePostgres(services: TestServices = testServices()): ServiceRequirement {
  return requirement('postgres', 'GATEHOUSE_TEST_POSTGRES_URL', services.postgresUrl, services);
}

/** The real Redis server of the test harness (GATEHOUSE_TEST_REDIS_URL). */
export function requireRedis(services: TestServices = testServices()): ServiceRequirement {
  return requirement('redis', 'GATEHOUSE_TEST_REDIS_URL', services.redisUrl, services);
}

/** The real NATS JetStream server of the test harness (GATEHOUSE_TEST_NATS_URL). */
export function requireNats(services: TestServices = testServices()): ServiceRequirement {
  return requirement('nats', 'GATEHOUSE_TEST_NATS_URL', services.natsUrl, services);
}

/** A short random name part, safe in SQL identifiers and Redis keys. */
export function uniqueSuffix(): string {
  return randomBytes(6).toString('hex');
}

/** A PostgreSQL schema that belongs to one test; every connection made from `url` uses it. */
export interface IsolatedPostgres extends AsyncDisposable {
  /** The schema name, e.g. `t_storage_3f9a01b2c4d5`. */
  readonly schema: string;
  /**
   * The server URL with `search_path` set to the schema and a unique `application_name`, so
   * a test can terminate exactly its own backends.
   */
  readonly url: string;
  /** The `application_name` that connections made from `url` report. */
  readonly applicationName: string;
  /** Drops the schema and everything in it. */
  drop(): Promise<void>;
}

/**
 * Creates a fresh schema on the test PostgreSQL server and returns a URL whose connections
 * use it, so parallel test files never see each other's tables. Call `drop()` (or use
 * `await using`) after the test.
 */
export async function isolatedPostgres(baseUrl: string, label = 't'): Promise<IsolatedPostgres> {
  const safeLabel = label
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 30);
  const schema = `t_${safeLabel}_${uniqueSuffix()}`;
  const applicationName = `gatehouse_test_${schema}`;
  const admin = new Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA "${schema}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(baseUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  url.searchParams.set('application_name', applicationName);
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    const client = new Client({ connectionString: baseUrl });
    await client.connect();
    try {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await client.end();
    }
  };
  return { schema, url: url.toString(), applicationName, drop, [Symbol.asyncDispose]: drop };
}

/**
 * Terminates every backend whose `application_name` is `applicationName`, to simulate a
 * dropped connection or a database restart without touching other tests' connections.
 */
export async function terminatePostgresBackends(baseUrl: string, applicationName: string): Promise<number> {
  const client = new Client({ connectionString: baseUrl });
  await client.connect();
  try {
    const result = await client.query(
      'SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()',
      [applicationName],
    );
    return result.rowCount ?? 0;
  } finally {
    await client.end();
  }
}

/** A Redis key prefix that belongs to one test. */
export interface IsolatedRedis extends AsyncDisposable {
  /** A prefix such as `gatehouse-test:cache:3f9a01b2c4d5:`; use it for every key and channel. */
  readonly prefix: string;
  readonly url: string;
  /** Deletes every key under the prefix. */
  cleanup(): Promise<void>;
}

/**
 * Returns a fresh key prefix on the test Redis server, so parallel test files never collide;
 * `cleanup()` (or `await using`) deletes the keys written under it.
 */
export function isolatedRedis(url: string, label = 'test'): IsolatedRedis {
  const prefix = `gatehouse-test:${label}:${uniqueSuffix()}:`;
  const cleanup = async () => {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
    try {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) await client.unlink(...keys);
      } while (cursor !== '0');
    } finally {
      client.disconnect();
    }
  };
  return { prefix, url, cleanup, [Symbol.asyncDispose]: cleanup };
}

/**
 * A loopback port nothing listens on (bound, then released), for "server unreachable" tests
 * that must fail fast with a refused connection rather than hang.
 */
export async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('The probe server has no TCP port');
  return address.port;
}
