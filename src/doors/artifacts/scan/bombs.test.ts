import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { isGatewayError } from '#core/errors';
import { createBuiltinScanner } from './builtin.ts';
import { bufferTarget, makeTar, makeTgz, makeZip } from './fixtures.ts';
import type { ScanLimits } from './limits.ts';
import type { ScanOutcome, ScanTarget } from './port.ts';
import type { RandomAccess } from './zip.ts';

const LIMITS: ScanLimits = {
  maxEntries: 100_000,
  maxExpandedSize: 20 * 1024 ** 3,
  maxDepth: 5,
  maxRatio: 200,
  maxBufferedFile: 256 * 1024 * 1024,
};
const MiB = 1024 * 1024;
/** Every scan below takes well under a second; a hang fails the test instead of stalling it. */
const BOUND_MS = 15_000;

interface Watched {
  readonly target: ScanTarget;
  /** True once the walk has closed the stream it opened (the stored blob's file, in the door). */
  closed(): boolean;
}

function target(fileName: string, data: Buffer, access?: RandomAccess): Watched {
  let opened = 0;
  let ended = 0;
  return {
    closed: () => opened === ended,
    target: {
      ...bufferTarget(fileName, data),
      ...(access === undefined ? {} : { access }),
      open: async () => {
        opened += 1;
        return (async function* () {
          try {
            for (let i = 0; i < data.length; i += 65_536) yield data.subarray(i, i + 65_536);
          } finally {
            ended += 1;
          }
        })();
      },
    },
  };
}

const scanner = (limits: Partial<ScanLimits> = {}, timeoutMs?: number) =>
  createBuiltinScanner({
    limits: () => ({ ...LIMITS, ...limits }),
    clock: { now: () => 0 },
    ...(timeoutMs === undefined ? {} : { timeoutMs: () => timeoutMs }),
  });

/** Rejects when `work` takes longer than `ms`. */
async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

const limitHit = (out: ScanOutcome, pattern: RegExp) => {
  assert.equal(out.problems.length, 1, JSON.stringify(out.problems));
  assert.equal(out.problems[0]?.code, 'GW_ERR_ARTIFACTS_ARCHIVE_LIMIT');
  assert.match(out.problems[0]?.message ?? '', pattern);
};

/** Rewrites the declared (uncompressed) size of the first central directory entry. */
function declareSize(zip: Buffer, size: number): Buffer {
  const out = Buffer.from(zip);
  const cd = out.readUInt32LE(out.length - 6);
  out.writeUInt32LE(size, cd + 24);
  return out;
}

void describe('built-in scanner against archive bombs', () => {
  void it('blocks a gzip bomb bigger than one stream buffer and closes the stream it read', async () => {
    // 100 MB of zeros in a tgz (~100 KB): the ratio trips while input is still queued for zlib.
    const w = target('midbomb.tgz', makeTgz([{ name: 'z.dat', data: Buffer.alloc(100 * MiB) }]));
    assert.ok(w.target.size > 64 * 1024);
    const out = await within(BOUND_MS, scanner().scan(w.target));
    limitHit(out, /"midbomb\.tgz" expands more than 200 times/);
    assert.ok(w.closed(), 'the artifact stream is closed');
  });

  void it('reports a corrupt gzip bigger than one stream buffer instead of hanging', async () => {
    // Text deflates to Huffman-coded blocks: overwriting some of them is a decoding error.
    const text = Array.from({ length: 100_000 }, (_, i) => `line ${i} ${Math.random()}\n`).join('');
    const gz = gzipSync(makeTar([{ name: 'notes.txt', data: text }]));
    gz.fill(0xff, 3000, 3300);
    const w = target('broken.tgz', gz);
    const out = await within(BOUND_MS, scanner().scan(w.target));
    assert.equal(out.problems[0]?.code, 'GW_ERR_ARTIFACTS_ARCHIVE_INVALID');
    assert.match(out.problems[0]?.message ?? '', /not valid gzip/);
    assert.ok(w.closed());
  });

  void it('blocks a zip bomb in an entry it parses, however big', async () => {
    const zip = makeZip([{ name: 'x/package-lock.json', data: Buffer.alloc(100 * MiB) }]);
    limitHit(await within(BOUND_MS, scanner().scan(target('lock.zip', zip).target)), /expands more than 200/);
  });

  void it('blocks a zip bomb made of entries it does not parse, by their declared sizes', async () => {
    const zeros = Buffer.alloc(40 * MiB);
    const zip = makeZip(Array.from({ length: 5 }, (_, i) => ({ name: `d${i}.bin`, data: zeros })));
    const out = await within(BOUND_MS, scanner().scan(target('b.zip', zip).target));
    limitHit(out, /"b\.zip!\/d0\.bin" expands more than 200 times/);
  });

  void it('blocks many small entries that each stay under the allowance but together are a bomb', async () => {
    const mib = Buffer.alloc(MiB);
    const zip = makeZip(Array.from({ length: 150 }, (_, i) => ({ name: `f${i}.bin`, data: mib })));
    const out = await within(BOUND_MS, scanner().scan(target('many.zip', zip).target));
    limitHit(out, /"many\.zip" expands more than 200 times/);
  });

  void it('blocks an entry that inflates beyond the size its header declares', async () => {
    // Declared 1000 bytes (ratio fine), really 30 MB of zeros; the entry is not a manifest.
    const zip = declareSize(makeZip([{ name: 'data.bin', data: Buffer.alloc(30 * MiB) }]), 1000);
    const out = await within(BOUND_MS, scanner().scan(target('liar.zip', zip).target));
    limitHit(out, /"data\.bin" expands beyond its declared 1000 bytes/);
    // The same lie in a stored entry is caught from the sizes alone.
    const stored = declareSize(
      makeZip([{ name: 'data.bin', data: randomBytes(5000) }], { stored: true }),
      10,
    );
    limitHit(await scanner().scan(target('s.zip', stored).target), /beyond its declared 10 bytes/);
    // Honest zips whose entries are not parsed still pass (declared and real sizes agree).
    const honest = makeZip([
      { name: 'go.mod', data: 'module x\nrequire a.b/c v1.0.0\n' },
      { name: 'lib/blob.bin', data: randomBytes(3 * MiB) },
      { name: 'lib/zeros.bin', data: Buffer.alloc(MiB) },
    ]);
    const ok = await within(BOUND_MS, scanner().scan(target('ok.zip', honest).target));
    assert.deepEqual(ok.problems, []);
    assert.deepEqual(
      ok.packages.map((p) => `${p.name}@${p.version}`),
      ['a.b/c@v1.0.0'],
    );
  });

  void it('fails a scan that outlives its deadline instead of running forever', async () => {
    // Random access that never answers: the walk cannot make progress at all.
    const stuck: RandomAccess = { size: 1000, read: () => new Promise<Buffer>(() => undefined) };
    const started = Date.now();
    await assert.rejects(
      within(BOUND_MS, scanner({}, 200).scan(target('stuck.bin', Buffer.alloc(1000), stuck).target)),
      (error: unknown) =>
        isGatewayError(error) &&
        error.code === 'GW_ERR_INTERNAL' &&
        /did not finish within 200 ms/.test(error.message),
    );
    assert.ok(Date.now() - started < 5000);
  });

  void it('stops an endless walk at the deadline and at shutdown, closing what it read', async () => {
    // An endless stream of small tar entries: the walk keeps going until told to stop.
    const entry = makeTar([{ name: 'f', data: 'x' }]).subarray(0, 1024);
    let closed = Promise.withResolvers<void>();
    const endless = (): ScanTarget => ({
      ...target('endless.tar', entry).target,
      size: 1 << 30,
      open: async () =>
        (async function* () {
          try {
            for (;;) {
              await new Promise((r) => setImmediate(r));
              yield entry;
            }
          } finally {
            closed.resolve();
          }
        })(),
    });
    await assert.rejects(
      within(BOUND_MS, scanner({ maxEntries: 1e9 }, 300).scan(endless())),
      /did not finish within 300 ms/,
    );
    await within(BOUND_MS, closed.promise);
    closed = Promise.withResolvers<void>();
    const shutdown = new AbortController();
    const scan = scanner({ maxEntries: 1e9 }, 60_000).scan(endless(), shutdown.signal);
    setTimeout(() => shutdown.abort(), 100);
    await assert.rejects(within(BOUND_MS, scan), /shutting down/);
    await within(BOUND_MS, closed.promise);
  });
});
