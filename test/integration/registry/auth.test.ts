/**
 * With `registry.auth: required`, package managers must present credentials with the
 * `registry:pull` permission; every way in without them is refused in npm's error form.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_TOKEN, type Gateway, startGateway } from './harness.ts';
import { type NpmUpstream, startNpmUpstream } from './npm-fixture.ts';

let work: string;
let up: NpmUpstream;
let gw: Gateway;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-auth-'));
  up = await startNpmUpstream(work, [
    { name: 'guarded', versions: [{ version: '1.0.0', publishedAt: Date.now() - 30 * 86_400_000 }] },
  ]);
  gw = await startGateway({
    config: {
      auth: 'required',
      npm: { uplinks: [{ name: 'public', url: up.url }] },
      pypi: { enabled: false },
    },
  });
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  await up?.[Symbol.asyncDispose]();
  await rm(work, { recursive: true, force: true });
});

void describe('registry with authentication required', () => {
  void it('refuses metadata and tarballs without valid credentials, in npm form', async () => {
    for (const headers of [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: 'Basic Zm9vOmJhcg==' },
    ] as Record<string, string>[]) {
      for (const path of ['/npm/guarded', '/npm/guarded/-/guarded-1.0.0.tgz']) {
        const r = await fetch(`${gw.url}${path}`, { headers });
        assert.equal(r.status, 401, `${path} ${JSON.stringify(headers)}`);
        assert.ok((r.headers.get('npm-notice') ?? '') !== '');
        assert.match(((await r.json()) as { code: string }).code, /^GW_ERR_AUTH_/);
      }
    }
    assert.equal(up.requests.length, 0, 'nothing reached the uplink');
  });

  void it('serves a principal with registry:pull', async () => {
    const r = await fetch(`${gw.url}/npm/guarded`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(r.status, 200);
    // verify() writes queued audit events first, so the query sees them.
    await gw.core.audit.verify();
    const events = await gw.core.audit.query({ action: 'registry.metadata', actor: 'user:admin' });
    assert.equal(events.events.length, 1, 'the decision names the client identity');
  });
});
