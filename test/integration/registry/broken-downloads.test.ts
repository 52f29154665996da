import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from './harness.ts';
import { startFileUplinkGateway } from './npm-file-uplink.ts';

// Large enough that the blob cache's file stream still has a write queued when a mismatch
// destroys it (a small file was always written at once).
const SIZE = 1024 * 1024;
// Each package its own bytes: the blob cache is addressed by digest.
const contentOf = (name: string) => Buffer.alloc(SIZE, name);

/** How the fake uplink answers a tarball request. */
type Mode = 'tampered' | 'cut' | 'good';

void describe('registry downloads the uplink breaks', () => {
  let gw: Gateway;
  let close: (() => Promise<void>) | undefined;
  const modes = new Map<string, Mode>();

  const tarball = (res: ServerResponse, mode: Mode, good: Buffer) => {
    if (mode === 'good') {
      res.writeHead(200, { 'content-length': String(good.length) });
      res.end(good);
      return;
    }
    if (mode === 'tampered') {
      const bad = Buffer.from(good);
      bad[bad.length - 3] = (bad[bad.length - 3] ?? 0) ^ 1;
      res.writeHead(200, { 'content-length': String(bad.length) });
      res.end(bad);
      return;
    }
    // Declares the whole length, sends a third of it, then resets the connection.
    res.writeHead(200, { 'content-length': String(good.length) });
    res.write(good.subarray(0, SIZE / 3), () => res.destroy());
  };

  before(async () => {
    ({ gw, close } = await startFileUplinkGateway(contentOf, (res, name) =>
      tarball(res, modes.get(name) ?? 'good', contentOf(name)),
    ));
  });
  after(async () => {
    await close?.();
  });

  void it('aborts only that download when a large file does not match its digest, and serves on', async () => {
    // This test process runs the gateway: the unheard stream error used to end it right here.
    modes.set('tampered', 'tampered');
    await assert.rejects(async () => {
      const r = await fetch(`${gw.url}/npm/tampered/-/tampered-1.0.0.tgz`);
      await r.arrayBuffer();
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const events = await gw.core.audit.query({ action: 'registry.integrity.mismatch' });
    assert.equal(events.events.length, 1);
    modes.set('tampered', 'good');
    const again = await fetch(`${gw.url}/npm/tampered/-/tampered-1.0.0.tgz`);
    assert.equal(again.status, 200);
    assert.equal(
      Buffer.from(await again.arrayBuffer()).equals(contentOf('tampered')),
      true,
      'nothing bad was cached',
    );
  });

  void it('answers a range of a file whose uplink broke off as an uplink failure, not an internal error', async () => {
    modes.set('cut', 'cut');
    const r = await fetch(`${gw.url}/npm/cut/-/cut-1.0.0.tgz`, { headers: { range: 'bytes=0-9' } });
    const body = (await r.json()) as { code: string };
    assert.equal(r.status, 502, JSON.stringify(body));
    assert.equal(body.code, 'GW_ERR_REGISTRY_UPLINK_UNAVAILABLE');
    const audited = await gw.core.audit.query({ action: 'registry.upstream.error' });
    assert.ok(audited.events.length >= 1);
    modes.set('cut', 'good');
    const part = await fetch(`${gw.url}/npm/cut/-/cut-1.0.0.tgz`, { headers: { range: 'bytes=0-9' } });
    assert.equal(part.status, 206);
    assert.equal(Buffer.from(await part.arrayBuffer()).toString(), 'cutcutcutc');
  });
});
