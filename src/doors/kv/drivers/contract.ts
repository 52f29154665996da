import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isGatewayError } from '#core/errors';
import { compareKeys } from './call.ts';
import type { KvDriver, ListPage } from './driver.ts';

/** One driver under test, with a way to let time pass for its TTLs. */
export interface DriverFixture {
  readonly driver: KvDriver;
  /**
   * Lets `ms` pass for TTL purposes: an injected clock for drivers that take the gateway's
   * clock, a bounded real wait for servers that own their clock (Redis).
   */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

const o = () => ({ signal: AbortSignal.timeout(10_000) });
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const hasCode = (code: string) => (error: unknown) => isGatewayError(error) && error.code === code;

/**
 * Lists (`list`, one whole page) while `work` runs, at least `min` and at most `max` times, and
 * describes every listing that is wrong: not in byte order, a key twice, a next page, a key of
 * `kept` (which `work` never touches) missing, or a key neither in `kept` nor in `may` (those
 * `work` removes, which may or may not be listed). `work` is awaited (its failure fails the caller).
 */
export async function listDuring(
  work: Promise<unknown>,
  list: () => Promise<ListPage>,
  keys: { readonly kept: readonly string[]; readonly may: readonly string[] },
  limits: { readonly min: number; readonly max: number },
): Promise<{ problems: string[]; lists: number }> {
  let running = true;
  const done = work.finally(() => {
    running = false;
  });
  const allowed = new Set([...keys.kept, ...keys.may]);
  const problems: string[] = [];
  let lists = 0;
  while (lists < limits.max) {
    if (!running && lists >= limits.min) break;
    lists += 1;
    const page = await list();
    const listed = new Set(page.keys);
    const sorted = page.keys.toSorted(compareKeys);
    const twice = page.keys.length - listed.size;
    const missing = keys.kept.filter((k) => !listed.has(k)).length;
    const foreign = page.keys.filter((k) => !allowed.has(k)).length;
    if (page.more || twice > 0 || missing > 0 || foreign > 0 || page.keys.some((k, i) => k !== sorted[i])) {
      problems.push(
        `listing ${lists}: ${page.keys.length} keys, ${missing} kept keys missing, ${twice} twice, ${foreign} unexpected, more=${page.more}`,
      );
    }
  }
  await done;
  return { problems, lists };
}

/**
 * The one contract every KvDriver passes (ARCHITECTURE.md: one suite per port, run against every
 * implementation, including the real servers). Each run uses fresh random namespaces so suites
 * can share a server.
 */
export function runDriverContract(
  name: string,
  setup: () => Promise<DriverFixture>,
  options: { readonly skip?: string | false } = {},
): void {
  void describe(`KvDriver contract: ${name}`, { skip: options.skip ?? false }, () => {
    let f: DriverFixture;
    let d: KvDriver;
    const ns = `c${randomUUID().slice(0, 8)}`;
    before(async () => {
      f = await setup();
      d = f.driver;
    });
    after(async () => f?.close());

    void it('reads back what it wrote, with version and metadata', async () => {
      assert.equal(await d.get(ns, 'absent', o()), undefined);
      assert.equal(await d.exists(ns, 'absent', o()), false);
      const v = await d.set(ns, 'a', bytes('one'), { ...o(), metadata: '{"k":1}' });
      const e = await d.get(ns, 'a', o());
      assert.equal(text(e?.value), 'one');
      assert.equal(e?.version, v);
      assert.equal(e?.metadata, '{"k":1}');
      assert.equal(e?.expiresAt, undefined);
      assert.equal(await d.exists(ns, 'a', o()), true);
    });

    void it('stores values binary-safe, including empty and every byte value', async () => {
      const all = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
      await d.set(ns, 'bin', all, o());
      assert.deepEqual(Buffer.from((await d.get(ns, 'bin', o()))?.value ?? []), Buffer.from(all));
      await d.set(ns, 'empty', new Uint8Array(0), o());
      assert.equal((await d.get(ns, 'empty', o()))?.value.length, 0);
    });

    void it('round-trips a 10 MiB value and unicode keys of 1 KiB', async () => {
      const big = Uint8Array.from({ length: 10 * 1024 * 1024 }, (_, i) => (i * 7) % 251);
      await d.set(ns, 'big', big, o());
      const back = await d.get(ns, 'big', o());
      assert.ok(back !== undefined && Buffer.from(back.value).equals(Buffer.from(big)));
      const key = `ключ-🔑-${'x'.repeat(1024 - 16)}`;
      await d.set(ns, key, bytes('u'), o());
      assert.equal(text((await d.get(ns, key, o()))?.value), 'u');
    });

    void it('increases versions per key, also across delete and re-create', async () => {
      const v1 = await d.set(ns, 'ver', bytes('1'), o());
      const v2 = await d.set(ns, 'ver', bytes('2'), o());
      assert.ok(v2 > v1);
      assert.equal(await d.delete(ns, 'ver', o()), true);
      assert.equal(await d.delete(ns, 'ver', o()), false);
      const v3 = await d.set(ns, 'ver', bytes('3'), o());
      assert.ok(v3 > v2);
    });

    void it('compares and sets by version, writing nothing on a mismatch', async () => {
      const v1 = await d.set(ns, 'cas', bytes('first'), { ...o(), expectedVersion: 0 });
      await assert.rejects(
        d.set(ns, 'cas', bytes('again'), { ...o(), expectedVersion: 0 }),
        hasCode('GW_ERR_KV_VERSION_CONFLICT'),
      );
      await assert.rejects(
        d.set(ns, 'cas', bytes('stale'), { ...o(), expectedVersion: v1 + 1000 }),
        hasCode('GW_ERR_KV_VERSION_CONFLICT'),
      );
      assert.equal(text((await d.get(ns, 'cas', o()))?.value), 'first');
      const v2 = await d.set(ns, 'cas', bytes('second'), { ...o(), expectedVersion: v1 });
      assert.ok(v2 > v1);
      await assert.rejects(
        d.set(ns, 'cas-absent', bytes('x'), { ...o(), expectedVersion: 5 }),
        hasCode('GW_ERR_KV_VERSION_CONFLICT'),
      );
    });

    void it('lets exactly one of concurrent compare-and-sets on one version win', async () => {
      const v = await d.set(ns, 'race', bytes('0'), o());
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) =>
          d.set(ns, 'race', bytes(String(i)), { ...o(), expectedVersion: v }),
        ),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results)
        if (r.status === 'rejected') assert.ok(hasCode('GW_ERR_KV_VERSION_CONFLICT')(r.reason));
    });

    void it('expires keys after their TTL and never returns them afterwards', async () => {
      await d.set(ns, 'ttl', bytes('t'), { ...o(), ttlMs: 1500 });
      const info = await d.ttl(ns, 'ttl', o());
      assert.equal(info?.expires, true);
      assert.ok(
        info !== undefined && info.remainingMs > 0 && info.remainingMs <= 1500,
        `${info?.remainingMs}`,
      );
      assert.ok((await d.get(ns, 'ttl', o()))?.expiresAt !== undefined);
      await d.set(ns, 'ttl-list', bytes('t'), { ...o(), ttlMs: 1500 });
      await f.advance(1700);
      assert.equal(await d.get(ns, 'ttl', o()), undefined);
      assert.equal(await d.exists(ns, 'ttl', o()), false);
      assert.equal(await d.ttl(ns, 'ttl', o()), undefined);
      // An expired value is not found, so it takes nothing of a batch's byte budget either.
      assert.deepEqual((await d.getMany(ns, ['ttl'], { ...o(), maxBytes: 0 }))[0], undefined);
      assert.deepEqual((await d.list(ns, 'ttl', { ...o(), limit: 10 })).keys, []);
      assert.equal(await d.expire(ns, 'ttl', 1000, o()), false);
      assert.equal(await d.persist(ns, 'ttl', o()), false);
      assert.equal(await d.delete(ns, 'ttl', o()), false);
    });

    void it('sets, reports and removes TTLs on present keys; a plain set clears the TTL', async () => {
      assert.equal(await d.expire(ns, 'nokey', 1000, o()), false);
      assert.equal(await d.ttl(ns, 'nokey', o()), undefined);
      await d.set(ns, 'e', bytes('e'), o());
      assert.deepEqual(await d.ttl(ns, 'e', o()), { expires: false, remainingMs: 0 });
      assert.equal(await d.expire(ns, 'e', 60_000, o()), true);
      assert.equal((await d.ttl(ns, 'e', o()))?.expires, true);
      assert.equal(await d.persist(ns, 'e', o()), true);
      assert.deepEqual(await d.ttl(ns, 'e', o()), { expires: false, remainingMs: 0 });
      await d.expire(ns, 'e', 60_000, o());
      await d.set(ns, 'e', bytes('again'), o());
      assert.deepEqual(await d.ttl(ns, 'e', o()), { expires: false, remainingMs: 0 });
      assert.equal(text((await d.get(ns, 'e', o()))?.value), 'again');
    });

    void it('keeps a version across expire and persist, so a compare-and-set on it still wins', async () => {
      const v = await d.set(ns, 'kept-version', bytes('v'), o());
      assert.equal(await d.expire(ns, 'kept-version', 60_000, o()), true);
      assert.equal((await d.get(ns, 'kept-version', o()))?.version, v);
      assert.equal(await d.persist(ns, 'kept-version', o()), true);
      assert.equal((await d.get(ns, 'kept-version', o()))?.version, v);
      const next = await d.set(ns, 'kept-version', bytes('w'), { ...o(), expectedVersion: v });
      assert.ok(next > v);
      // A plain write after expire and persist still moves the version on.
      assert.equal(await d.expire(ns, 'kept-version', 60_000, o()), true);
      assert.ok((await d.set(ns, 'kept-version', bytes('x'), o())) > next);
    });

    void it('isolates namespaces', async () => {
      const other = `${ns}-other`;
      await d.set(ns, 'shared', bytes('mine'), o());
      assert.equal(await d.get(other, 'shared', o()), undefined);
      await d.set(other, 'shared', bytes('theirs'), o());
      assert.equal(text((await d.get(ns, 'shared', o()))?.value), 'mine');
      assert.deepEqual((await d.list(other, '', { ...o(), limit: 100 })).keys, ['shared']);
      await d.delete(other, 'shared', o());
      assert.equal(text((await d.get(ns, 'shared', o()))?.value), 'mine');
    });

    void it('reads and writes batches in request order', async () => {
      const versions = await d.setMany(
        ns,
        [
          { key: 'b1', value: bytes('1') },
          { key: 'b2', value: bytes('2'), ttlMs: 60_000, metadata: '[]' },
        ],
        o(),
      );
      assert.equal(versions.length, 2);
      assert.ok((versions[1] ?? 0) > (versions[0] ?? 0));
      const got = await d.getMany(ns, ['b2', 'missing', 'b1'], { ...o(), maxBytes: 2 });
      assert.deepEqual(
        got.map((e) => text(e?.value)),
        ['2', undefined, '1'],
      );
      assert.equal(got[0]?.metadata, '[]');
      assert.equal(got[0]?.version, versions[1]);
    });

    void it('fails a batch read whose values pass its byte budget, and serves one that fits exactly', async () => {
      // 2.5 MB: several messages on NATS, whose head carries the size.
      const big = Buffer.alloc(2_500_000, 7);
      await d.setMany(
        ns,
        [
          { key: 'budget-big', value: big },
          { key: 'budget-1', value: Buffer.alloc(100, 1) },
          { key: 'budget-2', value: Buffer.alloc(200, 2) },
        ],
        o(),
      );
      const keys = ['budget-1', 'budget-big', 'missing', 'budget-2'];
      const got = await d.getMany(ns, keys, { ...o(), maxBytes: 2_500_300 });
      assert.deepEqual(
        got.map((e) => e?.value.length),
        [100, 2_500_000, undefined, 200],
      );
      assert.ok(Buffer.from(got[1]?.value ?? []).equals(big));
      for (const maxBytes of [2_500_299, 2_500_000, 0]) {
        await assert.rejects(d.getMany(ns, keys, { ...o(), maxBytes }), (e: unknown) => {
          assert.ok(isGatewayError(e), String(e));
          assert.equal(e.code, 'GW_ERR_KV_PAYLOAD_TOO_LARGE');
          assert.match(e.message, new RegExp(`more than the ${maxBytes} bytes`));
          return true;
        });
      }
      // Absent keys take nothing of the budget.
      assert.deepEqual(await d.getMany(ns, ['missing', 'absent'], { ...o(), maxBytes: 0 }), [
        undefined,
        undefined,
      ]);
    });

    void it('lists keys by prefix in byte order, page by page, each exactly once', async () => {
      const lns = `${ns}-list`;
      const wanted = Array.from({ length: 23 }, (_, i) => `p*[?]/${String(i).padStart(2, '0')}`);
      wanted.push('p*[?]/\u{1F600}', 'p*[?]/\uFFFD', 'p*[?]/é');
      await d.setMany(
        lns,
        [...wanted, 'p*[x', 'q', 'p', 'p*[?]'].map((key) => ({ key, value: bytes(key) })),
        o(),
      );
      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      for (;;) {
        const page = await d.list(lns, 'p*[?]/', {
          ...o(),
          limit: 10,
          ...(after === undefined ? {} : { after }),
        });
        assert.ok(page.keys.length <= 10);
        seen.push(...page.keys);
        pages += 1;
        assert.ok(pages < 10, 'listing must terminate');
        if (!page.more) break;
        after = page.resumeAfter ?? page.keys.at(-1);
      }
      assert.deepEqual(seen, wanted.toSorted(compareKeys));
      assert.deepEqual((await d.list(lns, 'zzz', { ...o(), limit: 5 })).keys, []);
    });

    void it('lists every key present throughout a listing exactly once while others are deleted', async () => {
      // The NATS driver once listed through a last-per-subject consumer whose end the server
      // miscounts once heads are purged: listings that ran during deletes came back short (even
      // empty) or with keys twice.
      const dns = `${ns}-churn`;
      const all = Array.from({ length: 600 }, (_, i) => `d-${String(i).padStart(4, '0')}`);
      await d.setMany(
        dns,
        all.map((key) => ({ key, value: bytes(key) })),
        o(),
      );
      const kept = all.filter((_, i) => i % 2 === 1);
      const deletes = (async () => {
        for (const key of all.filter((_, i) => i % 2 === 0)) await d.delete(dns, key, o());
      })();
      // At least a few listings, at most 400, and never past the deletes by more than those few.
      const { problems, lists } = await listDuring(
        deletes,
        () => d.list(dns, 'd-', { ...o(), limit: 1000 }),
        { kept, may: all },
        { min: 3, max: 400 },
      );
      assert.deepEqual(problems.slice(0, 5), [], `${problems.length} of ${lists} listings were wrong`);
      assert.deepEqual((await d.list(dns, 'd-', { ...o(), limit: 1000 })).keys, kept);
    });

    void it('fails with UNAVAILABLE on an already aborted deadline', async () => {
      const signal = AbortSignal.abort(new Error('deadline'));
      await assert.rejects(d.get(ns, 'a', { signal }), hasCode('GW_ERR_KV_BACKEND_UNAVAILABLE'));
      await assert.rejects(d.set(ns, 'a', bytes('x'), { signal }), hasCode('GW_ERR_KV_BACKEND_UNAVAILABLE'));
      await d.ping(o());
    });
  });
}
