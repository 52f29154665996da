import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { formatDistinguishedName, peerCertificateInfo, splitSubjectAltNames } from './peer.ts';

// Node prints a SAN value as a JSON string when it holds characters that would make the list
// ambiguous (src/crypto/crypto_common.cc, SafeX509SubjectAltNamePrint).
function nodeFormat(entries: readonly (readonly [string, string])[]): string {
  return entries
    .map(
      ([type, value]) =>
        `${type}:${/[,"\\]/.test(value) ? JSON.stringify(value).replaceAll(',', '\\u002c') : value}`,
    )
    .join(', ');
}

void describe('peer certificate conversion', () => {
  void it('splits SAN text back into its entries (property)', () => {
    const entry = fc.tuple(
      fc.constantFrom('DNS', 'URI', 'email', 'IP Address'),
      fc.string({ unit: fc.constantFrom(...'ab.:/-, "\\x1'.split('')), minLength: 1, maxLength: 16 }),
    );
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 6 }), (entries) => {
        assert.deepEqual(
          splitSubjectAltNames(nodeFormat(entries)),
          entries.map(([t, v]) => `${t}:${v}`),
        );
      }),
    );
  });

  void it('never throws on arbitrary SAN text (property)', () => {
    fc.assert(fc.property(fc.string(), (text) => Array.isArray(splitSubjectAltNames(text))));
  });

  void it('formats subjects most specific first with RFC 4514 escaping', () => {
    assert.equal(
      formatDistinguishedName({ C: 'DE', O: 'Example, Inc', CN: 'api' }),
      'CN=api,O=Example\\, Inc,C=DE',
    );
    assert.equal(formatDistinguishedName({ OU: ['a', 'b'], CN: ' x' }), 'CN=\\ x,OU=b,OU=a');
  });

  void it('returns undefined when the peer sent no certificate', () => {
    assert.equal(peerCertificateInfo(undefined), undefined);
    assert.equal(peerCertificateInfo({} as never), undefined);
  });
});
