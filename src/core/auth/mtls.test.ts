import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { loadConfig } from '#core/config';
import { authConfigSchema, type MtlsRule } from './config.ts';
import { commonName, createCertificateMapper } from './mtls.ts';
import type { PeerCertificateInfo } from './port.ts';
import { rejectsWith } from './test-support.ts';

async function rules(yaml: string): Promise<readonly MtlsRule[]> {
  return (await loadConfig(authConfigSchema, { text: `mtls:\n  rules:\n${yaml}` })).config.mtls.rules;
}

const cert = (subject: string, sans: readonly string[] = []): PeerCertificateInfo => ({
  subject,
  subjectAltNames: sans,
  fingerprint256: 'AA:BB',
});

void describe('client certificate mapping', () => {
  void it('maps SPIFFE URIs with captures into principal and namespace', async () => {
    const map = createCertificateMapper(
      await rules(
        '    - { match: "SAN:URI:spiffe://example.test/ns/*/sa/*", principal: "svc:$1/$2", bindings: [{ role: operator, namespace: "$1" }] }\n',
      ),
    );
    const principal = map(cert('CN=api', ['DNS:api.internal', 'URI:spiffe://example.test/ns/orders/sa/api']));
    assert.deepEqual(principal, {
      id: 'cert:svc:orders/api',
      kind: 'certificate',
      name: 'svc:orders/api',
      bindings: [{ role: 'operator', namespace: 'orders' }],
    });
  });

  void it('maps common names and DNS names, first matching rule wins', async () => {
    const map = createCertificateMapper(
      await rules(
        [
          '    - { match: "CN:billing-*", principal: "billing:$1", bindings: [{ role: reader, namespace: billing }] }',
          '    - { match: "SAN:DNS:**.internal", principal: "host:$1", bindings: [] }',
          '',
        ].join('\n'),
      ),
    );
    assert.equal(map(cert('CN=billing-eu,O=Example')).name, 'billing:eu');
    assert.equal(map(cert('O=Example,CN=billing-eu')).name, 'billing:eu');
    assert.equal(map(cert('CN=web', ['DNS:a.b.internal'])).name, 'host:a.b');
  });

  void it('fails closed when nothing maps or a capture would widen a binding', async () => {
    const map = createCertificateMapper(
      await rules(
        [
          '    - { match: "SAN:URI:spiffe://example.test/ns/*", principal: "svc:$1", bindings: [{ role: operator, namespace: "$1" }] }',
          '    - { match: "CN:exact", principal: "exact", bindings: [] }',
          '',
        ].join('\n'),
      ),
    );
    for (const info of [
      cert('CN=other'),
      cert('CN=exactly'),
      cert('CN=x', ['URI:spiffe://other.test/ns/orders']),
      cert('CN=x', ['URI:spiffe://example.test/ns/orders/sa/api']),
      cert('CN=x', ['DNS:spiffe://example.test/ns/orders']),
      // A literal "*" segment must not become a wildcard binding.
      cert('CN=x', ['URI:spiffe://example.test/ns/*']),
      cert(''),
    ]) {
      await rejectsWith(
        Promise.resolve().then(() => map(info)),
        'GW_ERR_AUTH_CERT_INVALID',
      );
    }
    await rejectsWith(
      Promise.resolve().then(() => createCertificateMapper([])(cert('CN=a'))),
      'GW_ERR_AUTH_CERT_INVALID',
    );
  });

  void it('treats every pattern character but "*" literally and captures one segment (property)', () => {
    const literal = fc.string({
      unit: fc.constantFrom(...'ab.+?^$()[]{}|\\:-'.split('')),
      minLength: 1,
      maxLength: 8,
    });
    const segment = fc.string({ unit: fc.constantFrom(...'xyz.-'.split('')), minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(literal, segment, segment, (prefix, capture, other) => {
        const rule: MtlsRule = { match: `SAN:URI:${prefix}/*/end`, principal: 'p:$1', bindings: [] };
        const map = createCertificateMapper([rule]);
        assert.equal(map(cert('', [`URI:${prefix}/${capture}/end`])).name, `p:${capture}`);
        // Another prefix of the same length, a second segment or a missing segment never match.
        for (const uri of [
          `${prefix}/${capture}/${other}/end`,
          `${prefix}//end`,
          `x${prefix}/${capture}/end`,
        ]) {
          assert.throws(() => map(cert('', [`URI:${uri}`])), /maps to no principal/);
        }
      }),
    );
  });

  void it('refuses malformed rules in configuration', async () => {
    await assert.rejects(rules('    - { match: "SUBJECT:x", principal: "p" }\n'), /mtls\.rules\[0\]\.match/);
    await assert.rejects(rules('    - { match: "CN:x", principal: "" }\n'), /mtls\.rules\[0\]\.principal/);
  });

  void it('reads the CN of RFC 4514 subjects with escapes (property)', () => {
    const value = fc.string({ unit: fc.constantFrom(...'abc ,+=\\'.split('')), minLength: 1, maxLength: 12 });
    const escape = (v: string) => v.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`);
    fc.assert(
      fc.property(value, value, (cn, org) => {
        assert.equal(commonName(`CN=${escape(cn)},O=${escape(org)}`), cn);
        assert.equal(commonName(`O=${escape(org)},CN=${escape(cn)}`), cn);
      }),
    );
    assert.equal(commonName('O=x'), undefined);
  });
});
