/**
 * Concurrent misses of one file share one upstream download: a fleet asking for the same
 * uncached tarball at once makes one upstream request, whatever the first client does, and every
 * client follows that download's outcome (the bytes, a mismatch, an uplink failure).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { request as httpRequest, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseExposition } from '#core/metrics';
import { eventually } from '#testing/eventually';
import type { Gateway } from './harness.ts';
import { startFileUplinkGateway } from './npm-file-uplink.ts';

const SIZE = 1024 * 1024;
const HALF = SIZE / 2;
const PIECE = 64 * 1024;
const CLIENTS = 8;
/** The last clients ask for ranges, which join the same download and are served once it is in. */
const RANGES = ['bytes=0-9', 'bytes=-5'] as const;
const WAIT_MS = 20_000;
const contentOf = (name: string) => Buffer.alloc(SIZE, name);
const sha512Hex = (bytes: Buffer) => createHash('sha512').update(bytes).digest('hex');

type Mode = 'good' | 'tampered' | 'unavailable';

/** What one client got: a status and its whole body, or the error that broke the transfer. */
type Outcome = { status: number; body: Buffer } | { failed: unknown };

const write = (res: ServerResponse, bytes: Buffer) =>
  new Promise<void>((resolve, reject) => res.write(bytes, (e) => (e ? reject(e) : resolve())));
const total = (by: Record<string, number>) => Object.values(by).reduce((a, b) => a + b, 0);

function assertServed(name: string, outcome: Outcome | undefined, range: string | undefined) {
  assert.ok(
    outcome !== undefined && 'status' in outcome,
    `"${name}" failed: ${outcome !== undefined && 'failed' in outcome ? String(outcome.failed) : 'no outcome'}`,
  );
  const full = contentOf(name);
  if (range === undefined) {
    assert.equal(outcome.status, 200);
    assert.ok(outcome.body.equals(full), `every client gets the whole "${name}"`);
    return;
  }
  assert.equal(outcome.status, 206, `${range} of "${name}"`);
  const want = range === 'bytes=-5' ? full.subarray(SIZE - 5) : full.subarray(0, 10);
  assert.ok(outcome.body.equals(want), `${range} of "${name}"`);
}

void describe('registry file downloads shared by concurrent misses', () => {
  let gw: Gateway;
  let close: (() => Promise<void>) | undefined;
  const modes = new Map<string, Mode>();
  const requests = new Map<string, number>();
  const gates = new Map<string, PromiseWithResolvers<void>>();

  /** Holds the second half of `name`'s tarball (or its 503) until `release(name)`. */
  const hold = (name: string) => gates.set(name, Promise.withResolvers<void>());
  const release = (name: string) => gates.get(name)?.resolve();

  const tarball = async (res: ServerResponse, name: string) => {
    requests.set(name, (requests.get(name) ?? 0) + 1);
    const mode = modes.get(name) ?? 'good';
    const gate = gates.get(name)?.promise;
    if (mode === 'unavailable') {
      await gate;
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('down for maintenance');
      return;
    }
    const body = Buffer.from(contentOf(name));
    if (mode === 'tampered') body[SIZE - 3] = (body[SIZE - 3] ?? 0) ^ 1;
    res.writeHead(200, { 'content-length': String(SIZE) });
    // The first half in pieces, each after the previous one was flushed, so that the gateway
    // gets several chunks (the digest check holds back only the latest).
    for (let at = 0; at < HALF; at += PIECE) await write(res, body.subarray(at, at + PIECE));
    await gate;
    res.end(body.subarray(HALF));
  };

  const fileUrl = (name: string) => `${gw.url}/npm/${name}/-/${name}-1.0.0.tgz`;

  const get = async (name: string, range?: string): Promise<Outcome> => {
    try {
      const r = await fetch(fileUrl(name), {
        ...(range === undefined ? {} : { headers: { range } }),
        signal: AbortSignal.timeout(WAIT_MS),
      });
      return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
    } catch (failed) {
      return { failed };
    }
  };

  /** The fleet: CLIENTS requests at once, the last ones with a Range. */
  const fleet = (name: string, count = CLIENTS) =>
    Array.from({ length: count }, (_, i) => get(name, RANGES[i - (count - RANGES.length)]));

  /** File cache lookups of the uplink so far, by result. */
  const lookups = async (): Promise<Record<string, number>> => {
    const by: Record<string, number> = {};
    for (const s of parseExposition((await gw.core.metrics.render()).body)) {
      if (s.name !== 'gatehouse_registry_cache_total' || s.labels['kind'] !== 'file') continue;
      const result = s.labels['result'] ?? '';
      by[result] = (by[result] ?? 0) + s.value;
    }
    return by;
  };
  /** Waits (bounded) until `n` more file requests than `base` reached the cache lookup. */
  const arrived = async (base: Record<string, number>, n: number) =>
    eventually(async () => total(await lookups()) - total(base), n, {
      timeoutMs: WAIT_MS,
      message: `${n} file requests should reach the gateway`,
    });

  /**
   * The packument first (so that requests differ only in the download), then the fleet against
   * an uplink in `mode` that holds the body until every client reached the gateway.
   */
  const runFleet = async (name: string, mode: Mode) => {
    assert.equal((await fetch(`${gw.url}/npm/${name}`)).status, 200);
    modes.set(name, mode);
    hold(name);
    const base = await lookups();
    const clients = fleet(name);
    await arrived(base, CLIENTS);
    release(name);
    const outcomes = await Promise.all(clients);
    assert.equal(requests.get(name), 1, `one upstream download of "${name}" for the whole fleet`);
    return { base, outcomes };
  };

  const blobDir = () => join(gw.dataDir, 'registry', 'blobs');
  const tmpFiles = async () => (await readdir(join(blobDir(), 'tmp')).catch(() => [])).length;
  const cached = async (name: string) => {
    const hex = sha512Hex(contentOf(name));
    return stat(join(blobDir(), 'sha512', hex.slice(0, 2), hex)).then(
      () => true,
      () => false,
    );
  };

  before(async () => {
    ({ gw, close } = await startFileUplinkGateway(contentOf, (res, name) => {
      void tarball(res, name).catch(() => res.destroy());
    }));
  });
  after(async () => {
    for (const gate of gates.values()) gate.resolve();
    await close?.();
  });

  void it('makes one upstream request for many concurrent misses, and every client gets the file', async () => {
    const name = 'fleet';
    const { base, outcomes } = await runFleet(name, 'good');
    outcomes.forEach((o, i) => assertServed(name, o, RANGES[i - (CLIENTS - RANGES.length)]));
    const now = await lookups();
    assert.equal((now['miss'] ?? 0) - (base['miss'] ?? 0), 1);
    assert.equal((now['coalesced'] ?? 0) - (base['coalesced'] ?? 0), CLIENTS - 1);
    assertServed(name, await get(name), undefined);
    assert.equal(requests.get(name), 1, 'then served from the cache');
  });

  void it('finishes the shared download for the others when the first client leaves midway', async () => {
    const name = 'leader';
    assert.equal((await fetch(`${gw.url}/npm/${name}`)).status, 200);
    hold(name);
    const base = await lookups();
    // The first client reads a first chunk of the body (it is streamed, not held until the end)
    // and then disconnects.
    const leader = httpRequest(fileUrl(name));
    const firstBytes = new Promise<number>((resolve, reject) => {
      leader.on('response', (res) => res.once('data', (chunk: Buffer) => resolve(chunk.length)));
      leader.on('error', reject);
    });
    leader.end();
    const got = await Promise.race([
      firstBytes,
      new Promise<never>((_, reject) =>
        AbortSignal.timeout(WAIT_MS).addEventListener('abort', () => reject(new Error('no bytes'))),
      ),
    ]);
    assert.ok(got > 0 && got < SIZE);
    const followers = fleet(name, CLIENTS - 1);
    await arrived(base, CLIENTS);
    leader.destroy();
    release(name);
    const outcomes = await Promise.all(followers);
    outcomes.forEach((o, i) => assertServed(name, o, RANGES[i - (CLIENTS - 1 - RANGES.length)]));
    assert.equal(requests.get(name), 1, 'one upstream download, not restarted by the followers');
    assert.ok(await cached(name), 'the file is in the cache');
    assertServed(name, await get(name), undefined);
    assert.equal(requests.get(name), 1);
  });

  void it('fails every concurrent client of a tampered file and caches nothing', async () => {
    const name = 'tampered';
    const { outcomes } = await runFleet(name, 'tampered');
    outcomes.forEach((o, i) => {
      if (i < CLIENTS - RANGES.length) {
        // Bytes already flowed: the connection is aborted before the body completes.
        assert.ok('failed' in o, `streaming client ${i} must not get a complete body`);
        return;
      }
      assert.ok('status' in o && o.status >= 500, `range client ${i} gets an error status`);
      assert.equal(
        (JSON.parse(o.body.toString()) as { code: string }).code,
        'GW_ERR_REGISTRY_INTEGRITY_MISMATCH',
      );
    });
    assert.equal(await cached(name), false, 'nothing bad was cached');
    await eventually(tmpFiles, 0, { timeoutMs: WAIT_MS, message: 'the temporary file is removed' });
    const audited = await gw.core.audit.query({ action: 'registry.integrity.mismatch' });
    assert.equal(audited.events.filter((e) => e.resource === 'npm:tampered@1.0.0').length, 1);
    modes.set(name, 'good');
    assertServed(name, await get(name), undefined);
    assert.equal(requests.get(name), 2, 'the next miss downloads again');
  });

  void it('gives every concurrent client the mapped error of a failing uplink', async () => {
    const name = 'down';
    const { outcomes } = await runFleet(name, 'unavailable');
    for (const o of outcomes) {
      assert.ok('status' in o, `every client gets an answer: ${'failed' in o ? String(o.failed) : ''}`);
      assert.equal(o.status, 502);
      assert.equal(
        (JSON.parse(o.body.toString()) as { code: string }).code,
        'GW_ERR_REGISTRY_UPLINK_UNAVAILABLE',
      );
    }
    assert.equal(await cached(name), false);
  });
});
