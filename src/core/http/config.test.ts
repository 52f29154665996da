import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { loadConfig, object } from '#core/config';
import { httpConfigSchema, parseCidr, parseListen, validateHttpConfig } from './config.ts';

const root = object({ server: httpConfigSchema }, 'Root');

void describe('parseListen', () => {
  void it('accepts IPv4, bracketed IPv6 and host names', () => {
    assert.deepEqual(parseListen('127.0.0.1:7070'), { host: '127.0.0.1', port: 7070 });
    assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseListen('[fd00::1:2]:443'), { host: 'fd00::1:2', port: 443 });
    assert.deepEqual(parseListen('localhost:8080'), { host: 'localhost', port: 8080 });
  });

  void it('refuses malformed addresses', () => {
    for (const text of [
      '',
      '7070',
      '127.0.0.1',
      '::1:7070',
      '[::1]',
      '1.2.3:80',
      '999.1.1.1:80',
      'a:65536',
      '[zz::1]:80',
      'host :80',
      'a:-1',
    ]) {
      assert.equal(parseListen(text), undefined, text);
    }
  });

  void it('round-trips every IPv4 and IPv6 address and port', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), fc.integer({ min: 0, max: 65_535 }), (ip, port) => {
        const text = ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
        assert.deepEqual(parseListen(text), { host: ip, port });
      }),
    );
  });

  void it('never throws on arbitrary text', () => {
    fc.assert(fc.property(fc.string(), (text) => void parseListen(text)));
  });
});

void describe('parseCidr', () => {
  void it('accepts addresses and prefixes within range', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), (ip, prefix) => {
        assert.deepEqual(parseCidr(`${ip}/${prefix}`), { address: ip, prefix, family: 4 });
      }),
    );
    fc.assert(
      fc.property(fc.ipV6(), fc.integer({ min: 0, max: 128 }), (ip, prefix) => {
        assert.deepEqual(parseCidr(`${ip}/${prefix}`), { address: ip, prefix, family: 6 });
      }),
    );
    assert.deepEqual(parseCidr('10.0.0.1'), { address: '10.0.0.1', prefix: 32, family: 4 });
  });

  void it('refuses out-of-range prefixes and junk', () => {
    for (const text of [
      '10.0.0.0/33',
      '::/129',
      '10.0.0.0/',
      '10.0.0.0/8/8',
      'x/8',
      '10.0.0.0/-1',
      '10.0.0.0/08a',
    ]) {
      assert.equal(parseCidr(text), undefined, text);
    }
    fc.assert(fc.property(fc.string(), (text) => void parseCidr(text)));
  });
});

void describe('httpConfigSchema', () => {
  void it('has the embedded defaults', async () => {
    const { config } = await loadConfig(root, {});
    assert.equal(config.server.listen, '127.0.0.1:7070');
    assert.equal(config.server.bodyLimit, 1024 * 1024);
    assert.deepEqual(config.server.cors.origins, []);
    assert.equal(config.server.tls.minVersion, 'TLSv1.3');
    assert.equal(config.server.tls.certFile, undefined);
    assert.deepEqual(validateHttpConfig(config.server), { host: '127.0.0.1', port: 7070 });
  });

  void it('takes GATEHOUSE_LISTEN and reports bad values by key', async () => {
    const { config } = await loadConfig(root, { env: { GATEHOUSE_LISTEN: '[::1]:9000' } });
    assert.deepEqual(validateHttpConfig(config.server), { host: '::1', port: 9000 });
    await assert.rejects(
      loadConfig(root, {
        text: 'server:\n  bodyLimit: huge\n  cors:\n    origins: ["ftp://x"]\n  tls:\n    minVersion: SSLv3\n',
      }),
      (error: Error) =>
        /server\.bodyLimit/.test(error.message) &&
        /server\.cors\.origins\[0\]/.test(error.message) &&
        /server\.tls\.minVersion/.test(error.message),
    );
  });

  void it('refuses inconsistent settings at validate time', async () => {
    const parse = async (text: string) => (await loadConfig(root, { text })).config.server;
    // Addresses that do not parse are refused by the schema itself, with every other issue.
    await assert.rejects(
      parse('server:\n  listen: nope\n  trustedProxies: ["10.0.0.0/99"]\n'),
      (error: Error) => /server\.listen/.test(error.message) && /trustedProxies\[0\]/.test(error.message),
    );
    const cases: [string, RegExp][] = [
      ['server:\n  tls:\n    requireTls: true\n', /requireTls/],
      ['server:\n  tls:\n    keyFile: k.pem\n', /together/],
      ['server:\n  tls:\n    certFile: c.pem\n    keyFile: k.pem\n    requestClientCert: true\n', /clientCa/],
    ];
    for (const [text, message] of cases) {
      const server = await parse(text);
      assert.throws(
        () => validateHttpConfig(server),
        (error: Error) => error instanceof RangeError && message.test(error.message),
      );
    }
  });
});
