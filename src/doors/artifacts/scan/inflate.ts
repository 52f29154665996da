import type { Transform } from 'node:stream';

/** Resolves once the transform takes input again ('drain') or never will (destroyed or closed). */
function writable(z: Transform): Promise<void> {
  if (z.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      z.off('drain', done);
      z.off('close', done);
      resolve();
    };
    z.on('drain', done);
    z.on('close', done);
  });
}

/**
 * Feeds `source` through a zlib transform and yields what comes out. `check` sees the compressed
 * and expanded byte counts after every output chunk and throws to stop (an archive limit).
 *
 * However the read ends (a limit, corrupt data, the consumer returning early), the transform is
 * destroyed and the feeder stops reading `source`: it waits for 'drain' or 'close', because a
 * destroyed transform never emits 'drain' and a feeder waiting only for that hangs for good.
 */
export async function* throughZlib(
  z: Transform,
  source: AsyncIterable<Buffer>,
  check: (compressed: number, expanded: number) => void,
): AsyncGenerator<Buffer> {
  let compressed = 0;
  const feeding = (async () => {
    try {
      for await (const chunk of source) {
        if (z.destroyed) break;
        compressed += chunk.length;
        if (!z.write(chunk)) await writable(z);
        if (z.destroyed) break;
      }
      if (!z.destroyed) z.end();
    } catch (error) {
      z.destroy(error as Error);
    }
  })();
  let expanded = 0;
  try {
    for await (const out of z) {
      const buf = out as Buffer;
      expanded += buf.length;
      check(compressed, expanded);
      yield buf;
    }
  } finally {
    z.destroy();
    await feeding;
  }
}
