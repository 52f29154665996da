/**
 * A packument of more than 10 MB is parsed, filtered, serialized and compressed without blocking
 * the event loop for more than about 50 ms: the work happens in the packument worker.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { type Gateway, startGateway } from './harness.ts';

const DAY = 86_400_000;
const NOW = Date.now();

/** A packument shaped like a popular package's: thousands of versions with long manifests. */
export function bigPackument(name: string, versions: number, padding = 2600): string {
  const v: Record<string, unknown> = {};
  const time: Record<string, string> = { created: new Date(NOW - 900 * DAY).toISOString() };
  for (let i = 0; i < versions; i++) {
    const version = `${Math.floor(i / 100)}.${Math.floor(i / 10) % 10}.${i % 10}`;
    v[version] = {
      name,
      version,
      description: `Version ${version} `.padEnd(padding, 'x'),
      dependencies: { 'dep-a': `^${i % 7}.0.0`, 'dep-b': '~2.1.0' },
      dist: {
        integrity: `sha512-${Buffer.alloc(64, i % 256).toString('base64')}`,
        shasum: 'a'.repeat(40),
        tarball: `http://upstream.invalid/${name}/-/${name}-${version}.tgz`,
      },
    };
    // The newest tenth is too young for the two-day minimum age.
    time[version] = new Date(NOW - (versions - i) * (i > versions * 0.9 ? 1_000 : DAY / 4)).toISOString();
  }
  return JSON.stringify({
    name,
    'dist-tags': { latest: Object.keys(v).at(-1) },
    versions: v,
    time,
    readme: 'r'.repeat(100_000),
  });
}

let body: Buffer;
const etagBase = (etag: string) => etag.replace(/-(brs|br|gzs|gzf|gz)"$/, '"');
let server: ReturnType<typeof createServer>;
let gw: Gateway;

before(async () => {
  body = Buffer.from(bigPackument('big-pkg', 4000));
  server = createServer((req, res) => {
    if (req.url === '/big-pkg') res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const config = { npm: { uplinks: [{ name: 'public', url }] }, pypi: { enabled: false } };
  gw = await startGateway({ config });
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  server?.closeAllConnections();
  server?.close();
});

/** The longest event-loop stall (ms) during one cold fetch, checking the filtered result. */
async function coldFetchStall(target: Gateway): Promise<number> {
  await target.door.invalidate('npm', 'big-pkg');
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const res = await fetch(`${target.url}/npm/big-pkg`, { headers: { 'accept-encoding': 'br' } });
  // Bytes, not a string: decoding 10 MB here would itself block the loop being measured.
  const bytes = Buffer.from(await res.arrayBuffer());
  h.disable();
  assert.equal(res.status, 200);
  // Stored encodings may not exist yet on a cold miss; the answer is then gzipped on the fly.
  assert.ok(
    ['gzip', 'br'].includes(res.headers.get('content-encoding') ?? ''),
    'never 10 MB uncompressed to a client that accepts compression',
  );
  const doc = JSON.parse(bytes.toString('utf8')) as {
    versions: Record<string, unknown>;
    'dist-tags': { latest: string };
  };
  const kept = Object.keys(doc.versions).length;
  assert.ok(kept > 3500 && kept < 4000, `kept ${kept} versions`);
  assert.ok(doc.versions[doc['dist-tags'].latest] !== undefined);
  return h.max / 1e6;
}

void describe('large packuments', () => {
  void it('answers a cold miss in the coding each client accepts, all decoding to the stored document', async () => {
    const decoders: Record<string, (b: Buffer) => Buffer> = {
      gzip: gunzipSync,
      br: brotliDecompressSync,
      identity: (b) => b,
    };
    const cold: Record<string, { coding: string; etag: string; text: string }> = {};
    for (const accept of ['gzip, deflate', 'br', 'identity']) {
      await gw.door.invalidate('npm', 'big-pkg');
      const res = await request(`${gw.url}/npm/big-pkg`, { headers: { 'accept-encoding': accept } });
      const raw = Buffer.from(await res.body.arrayBuffer());
      assert.equal(res.statusCode, 200);
      const coding = String(res.headers['content-encoding'] ?? 'identity');
      assert.equal(coding, accept.split(',')[0], `coding for "${accept}"`);
      const decode = decoders[coding] as (b: Buffer) => Buffer;
      cold[accept] = { coding, etag: String(res.headers['etag']), text: decode(raw).toString('utf8') };
    }
    // Once every form is stored, a warm identity answer is the same document, same validator base.
    let warm: { etag: string; text: string } | undefined;
    for (let i = 0; i < 200 && warm === undefined; i++) {
      const res = await request(`${gw.url}/npm/big-pkg`, { headers: { 'accept-encoding': 'br' } });
      const bytes = Buffer.from(await res.body.arrayBuffer());
      if (res.headers['content-encoding'] === 'br' && !String(res.headers['etag']).endsWith('-brs"'))
        warm = { etag: String(res.headers['etag']), text: brotliDecompressSync(bytes).toString('utf8') };
      else await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(warm !== undefined, 'the brotli form was stored');
    for (const c of Object.values(cold)) {
      assert.equal(c.text, warm.text);
      assert.equal(etagBase(c.etag), etagBase(warm.etag));
    }
  });

  void it('filters a packument of 10 MB or more while the event loop keeps turning', async (t) => {
    assert.ok(body.length >= 10 * 1024 * 1024, `fixture is ${body.length} bytes`);
    // Best of up to five cold fetches: our own blocking would show in every run, while CPU spikes
    // from other processes on a shared machine come and go. When the machine is overloaded the
    // scheduler stretches every stall by about load / CPUs, so the bound stretches with it; work
    // done inline (about 300 ms of CPU for this document) stays far above it either way.
    const stretch = () => Math.max(1, (loadavg()[0] ?? 0) / availableParallelism());
    const stalls: number[] = [];
    for (let run = 0; run < 5; run++) {
      stalls.push(await coldFetchStall(gw));
      if (Math.min(...stalls) < 60 * stretch()) break;
    }
    const best = Math.min(...stalls);
    if (best >= 60 * stretch() && stretch() > 3) {
      // Beyond three runnable processes per CPU a stall says more about the neighbours than about
      // this code; the filtered result was still checked above.
      t.skip(
        `machine overloaded (load ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} CPUs); stalls ${stalls.map((m) => m.toFixed(0)).join(', ')} ms`,
      );
      return;
    }
    assert.ok(
      best < 60 * stretch(),
      `event loop blocked for ${stalls.map((m) => m.toFixed(1)).join(', ')} ms (load ${loadavg()[0]?.toFixed(1)})`,
    );
  });
});
