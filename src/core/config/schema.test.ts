import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigValidationError, loadConfig } from './load.ts';
import {
  array,
  boolean,
  duration,
  integer,
  object,
  oneOf,
  optional,
  record,
  size,
  string,
} from './schema.ts';
import { formatDuration, parseDuration, parseSize } from './units.ts';

const schema = object(
  {
    server: object(
      {
        listen: string({ description: 'Address', env: 'GATEHOUSE_LISTEN' }, { default: '127.0.0.1:7070' }),
        shutdownTimeout: duration('Drain bound', { default: '30s' }),
        bodyLimit: size('Body limit', { default: '1MiB' }),
      },
      'Server',
    ),
    log: object({ level: oneOf(['debug', 'info'] as const, 'Level', { default: 'info' }) }, 'Log'),
    workers: integer('Workers', { default: 2, min: 1, max: 8 }),
    tls: optional(object({ certFile: string('Cert') }, 'TLS')),
    origins: array(string('Origin'), 'CORS origins', { default: [] }),
    debug: boolean('Debug', { default: false }),
    namespaces: record(
      object({ driver: oneOf(['memory', 'redis'] as const, 'Driver') }, 'Namespace'),
      'Namespaces',
      {
        default: {},
      },
    ),
  },
  'Root',
);

describe('config schema', () => {
  it('fills defaults and parses units', async () => {
    const { config } = await loadConfig(schema, {});
    assert.equal(config.server.listen, '127.0.0.1:7070');
    assert.equal(config.server.shutdownTimeout, 30_000);
    assert.equal(config.server.bodyLimit, 1024 * 1024);
    assert.equal(config.tls, undefined);
    assert.deepEqual(config.origins, []);
  });

  it('reports every problem at once with path, value and expectation', async () => {
    const text = 'server:\n  shutdownTimeout: 30\n  bodyLimt: 1\nworkers: 99\nlog:\n  level: loud\n';
    await assert.rejects(loadConfig(schema, { text }), (error: unknown) => {
      assert.ok(error instanceof ConfigValidationError);
      const paths = error.issues.map((i) => i.path).sort();
      assert.deepEqual(paths, ['log.level', 'server.bodyLimt', 'server.shutdownTimeout', 'workers']);
      assert.match(error.message, /workers: 99 is not valid; expected an integer from 1 to 8/);
      assert.match(error.message, /log\.level: "loud" is not valid; expected one of "debug", "info"/);
      assert.match(error.message, /server\.bodyLimt: .*no such key/);
      return true;
    });
  });

  it('names the length a string must have when it is too short or too long', async () => {
    const lengths = object(
      {
        token: string({ description: 'Token', secret: true }, { minLength: 32 }),
        name: string('Name', { minLength: 1, maxLength: 8 }),
        any: string('Any', { default: '' }),
      },
      'Root',
    );
    await assert.rejects(
      loadConfig(lengths, { text: 'token: short\nname: much-too-long\n' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigValidationError);
        const expected = Object.fromEntries(error.issues.map((i) => [i.path, i.expected]));
        assert.deepEqual(expected, {
          token: 'a string of at least 32 characters',
          name: 'a string of 1 to 8 characters',
        });
        return true;
      },
    );
    await assert.rejects(loadConfig(lengths, { text: 'token: ""\nname: ""\n' }), (error: unknown) => {
      assert.ok(error instanceof ConfigValidationError);
      assert.match(error.message, /name: "" is not valid; expected a string of 1 to 8 characters/);
      return true;
    });
  });

  it('applies GATEHOUSE_* overrides, typed, and names the variable on a bad one', async () => {
    const env = { GATEHOUSE_SERVER_SHUTDOWN_TIMEOUT: '5s', GATEHOUSE_WORKERS: '4', GATEHOUSE_DEBUG: 'yes' };
    const { config } = await loadConfig(schema, { text: 'workers: 1\n', env });
    assert.equal(config.server.shutdownTimeout, 5000);
    assert.equal(config.workers, 4);
    assert.equal(config.debug, true);
    const { config: aliased } = await loadConfig(schema, { env: { GATEHOUSE_LISTEN: '0.0.0.0:1' } });
    assert.equal(aliased.server.listen, '0.0.0.0:1');
    await assert.rejects(
      loadConfig(schema, { env: { GATEHOUSE_WORKERS: 'many' } }),
      /workers: "many" is not valid.*\(from GATEHOUSE_WORKERS\)/,
    );
  });

  it('parses lists and maps from JSON in the environment', async () => {
    const env = { GATEHOUSE_ORIGINS: 'a, b', GATEHOUSE_NAMESPACES: '{"orders":{"driver":"redis"}}' };
    const { config } = await loadConfig(schema, { env });
    assert.deepEqual(config.origins, ['a', 'b']);
    assert.equal(config.namespaces['orders']?.driver, 'redis');
  });

  it('finds only configured entries in a map, whatever name a caller looks up', async () => {
    const env = { GATEHOUSE_NAMESPACES: '{"orders":{"driver":"redis"},"__proto__":{"driver":"memory"}}' };
    const { config } = await loadConfig(schema, { env });
    for (const name of ['constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
      assert.equal(config.namespaces[name], undefined, name);
    }
    // A "__proto__" key is an entry, not the map's prototype.
    assert.equal(config.namespaces['__proto__']?.driver, 'memory');
    assert.equal(Object.getPrototypeOf(config.namespaces), null);
    assert.deepEqual(Object.keys(config.namespaces).toSorted(), ['__proto__', 'orders']);
  });

  it('warns about unknown GATEHOUSE_* variables', async () => {
    const { warnings } = await loadConfig(schema, { env: { GATEHOUSE_WROKERS: '1', GATEHOUSE_URL: 'x' } });
    assert.deepEqual(warnings, ['Ignoring unknown environment variable "GATEHOUSE_WROKERS"']);
  });

  it("ignores Kubernetes' service-link variables, but only with the values Kubernetes gives them", async () => {
    const links = {
      GATEHOUSE_SERVICE_HOST: '10.96.0.12',
      GATEHOUSE_SERVICE_PORT: '7070',
      GATEHOUSE_SERVICE_PORT_HTTP: '7070',
      GATEHOUSE_PORT: 'tcp://10.96.0.12:7070',
      GATEHOUSE_PORT_7070_TCP: 'tcp://10.96.0.12:7070',
      GATEHOUSE_PORT_7070_TCP_PROTO: 'tcp',
      GATEHOUSE_PORT_7070_TCP_PORT: '7070',
      GATEHOUSE_PORT_7070_TCP_ADDR: '10.96.0.12',
      GATEHOUSE_KV_SERVICE_HOST: 'fd00::12',
      GATEHOUSE_KV_PORT_7443_TCP_ADDR: 'fd00::12',
    };
    assert.deepEqual((await loadConfig(schema, { env: links })).warnings, []);
    // The same names with values a person would type are settings that do not exist.
    const typed = { GATEHOUSE_KV_PORT: '7443', GATEHOUSE_SERVICE_HOST: 'gateway.example.test' };
    assert.deepEqual((await loadConfig(schema, { env: typed })).warnings, [
      'Ignoring unknown environment variable "GATEHOUSE_KV_PORT"',
      'Ignoring unknown environment variable "GATEHOUSE_SERVICE_HOST"',
    ]);
  });

  it('rejects malformed YAML with its position, and YAML alias bombs', async () => {
    await assert.rejects(loadConfig(schema, { text: 'server: [\n' }), /line \d+, column \d+/);
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 8; i += 1)
      bomb.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(',')}]`,
      );
    // As an invalid document naming where it came from (config validate exits 2, a reload names
    // the file), not as the YAML library's own error.
    await assert.rejects(loadConfig(schema, { text: bomb.join('\n') }), (error: unknown) => {
      assert.ok(error instanceof ConfigValidationError, String(error));
      assert.match(error.issues[0]?.expected ?? '', /at most 100 aliases/);
      return true;
    });
  });
});

describe('units', () => {
  it('parses durations and sizes', () => {
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('2d'), 172_800_000);
    assert.equal(parseDuration('30'), undefined);
    assert.equal(parseDuration('-1s'), undefined);
    assert.equal(parseSize('10MiB'), 10_485_760);
    assert.equal(parseSize('1GB'), 1e9);
    assert.equal(parseSize('12 parsecs'), undefined);
  });

  it('round-trips formatted durations (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 * 86_400_000 }), (ms) => {
        assert.equal(parseDuration(formatDuration(ms)), ms);
      }),
    );
  });
});
