import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeOrigins, realmRefusal } from './realm.ts';

const refusal = (uplink: string, realm: string, allowed: readonly string[] = []) =>
  realmRefusal(uplink, normalizeOrigins(allowed), new URL(realm));

void describe('token realm origins', () => {
  void it('allows the uplink host on any port, and hosts of its parent domain, by default', () => {
    const uplink = 'https://registry.example.test/';
    for (const realm of [
      'https://registry.example.test/token',
      'https://registry.example.test:8443/token',
      'https://auth.example.test/token',
      'https://example.test/jwt/auth',
      'https://a.b.example.test/token',
    ])
      assert.equal(refusal(uplink, realm), undefined, realm);
  });

  void it('refuses other domains, lookalikes, and siblings of a two-label or IP uplink', () => {
    const cases: [string, string][] = [
      ['https://registry.example.test/', 'https://auth.elsewhere.test/token'],
      ['https://registry.example.test/', 'https://evilexample.test/token'],
      ['https://registry.example.test/', 'https://example.test.evil.test/token'],
      ['https://registry.example.test/', 'https://169.254.169.254/token'],
      ['https://example.test/', 'https://auth.example.test/token'],
      ['https://example.test/', 'https://other.test/token'],
      ['https://127.0.0.1:5000/', 'https://127.0.0.2/token'],
      ['https://[::1]:5000/', 'https://localhost/token'],
    ];
    for (const [uplink, realm] of cases)
      assert.match(refusal(uplink, realm) ?? '', /outside the uplink's domain/, `${uplink} ${realm}`);
  });

  void it('refuses hosts of a parent domain that is a public suffix (ICANN or private)', () => {
    const cases: [string, string][] = [
      ['https://example.co.uk/', 'https://evil.co.uk/token'],
      ['https://example.co.uk/', 'https://co.uk/token'],
      ['https://team.github.io/', 'https://other.github.io/token'],
      ['https://bucket.s3.amazonaws.com/', 'https://evil.s3.amazonaws.com/token'],
    ];
    for (const [uplink, realm] of cases)
      assert.match(refusal(uplink, realm) ?? '', /outside the uplink's domain/, `${uplink} ${realm}`);
    // One level further down, the parent is a registrable domain again.
    assert.equal(refusal('https://registry.example.co.uk/', 'https://auth.example.co.uk/token'), undefined);
  });

  void it('never allows plain http for an https uplink, even when listed or on its own host', () => {
    for (const realm of ['http://registry.example.test/token', 'http://auth.example.test/token'])
      assert.match(
        refusal('https://registry.example.test/', realm, ['http://auth.example.test']) ?? '',
        /plain http while the uplink is https/,
      );
    assert.equal(refusal('http://127.0.0.1:5000/', 'http://127.0.0.1:5001/token'), undefined);
    assert.equal(refusal('http://registry.example.test/', 'https://auth.example.test/token'), undefined);
  });

  void it('with tokenRealmOrigins, allows the uplink origin and the listed origins only', () => {
    const uplink = 'https://registry.example.test/';
    const allowed = ['https://AUTH.other.test:443'];
    assert.equal(refusal(uplink, 'https://auth.other.test/token', allowed), undefined);
    assert.equal(refusal(uplink, 'https://registry.example.test/v2/token', allowed), undefined);
    assert.match(
      refusal(uplink, 'https://auth.example.test/token', allowed) ?? '',
      /"https:\/\/auth\.example\.test" is not in the uplink's tokenRealmOrigins/,
    );
    assert.match(refusal(uplink, 'https://auth.other.test:8443/token', allowed) ?? '', /not in/);
  });

  void it('refuses a realm that is not http(s)', () => {
    assert.match(
      refusal('https://registry.example.test/', 'file:///etc/passwd') ?? '',
      /not an http\(s\) URL/,
    );
  });
});
