import type { Environment } from './load.ts';

/**
 * The process environment. This module is the only place that reads `process.env`
 * (ARCHITECTURE.md, dependency rule 5): everything else receives what it needs.
 */
export function processEnvironment(): Environment {
  return { ...process.env };
}

/** The real services the test harness uses, from GATEHOUSE_TEST_* variables. */
export interface TestServices {
  readonly postgresUrl: string | undefined;
  readonly redisUrl: string | undefined;
  readonly natsUrl: string | undefined;
  /** When true a missing service fails the run instead of skipping its suites. */
  readonly requireServices: boolean;
}

/** Reads GATEHOUSE_TEST_* (set by .ci/run and by developers). */
export function testServices(env: Environment = process.env): TestServices {
  const value = (name: string) => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  return {
    postgresUrl: value('GATEHOUSE_TEST_POSTGRES_URL'),
    redisUrl: value('GATEHOUSE_TEST_REDIS_URL'),
    natsUrl: value('GATEHOUSE_TEST_NATS_URL'),
    requireServices: value('GATEHOUSE_TEST_REQUIRE_SERVICES') === '1',
  };
}
