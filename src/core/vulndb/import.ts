import { opendir, stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GatewayError } from '#core/errors';
import { asOsvRecord, type OsvRecord } from './osv.ts';
import type { VulndbStore } from './store.ts';
import { readZip } from './zip.ts';

/** Counters of one import, reported as progress and at the end. */
export interface ImportStats {
  read: number;
  inserted: number;
  updated: number;
  unchanged: number;
  /** Entries that were not valid JSON or not OSV records; skipped, with the first few named. */
  invalid: number;
  readonly invalidSamples: string[];
}

export interface ImportOptions {
  /** Called after every batch. */
  readonly onProgress?: (stats: Readonly<ImportStats>) => void;
  readonly batchSize?: number;
  /** Largest single record accepted (default 16 MiB). */
  readonly maxRecordBytes?: number;
  readonly signal?: AbortSignal;
}

async function* walkJson(dir: string): AsyncGenerator<{ name: string; data: Buffer }> {
  const entries = await opendir(dir);
  const names: { path: string; isDir: boolean }[] = [];
  for await (const e of entries) {
    if (e.name.startsWith('.')) continue;
    names.push({ path: join(dir, e.name), isDir: e.isDirectory() });
  }
  names.sort((a, b) => (a.path < b.path ? -1 : 1));
  for (const n of names) {
    if (n.isDir) yield* walkJson(n.path);
    else if (n.path.endsWith('.json')) yield { name: n.path, data: await readFile(n.path) };
  }
}

async function* entriesOf(source: string, maxBytes: number): AsyncGenerator<{ name: string; data: Buffer }> {
  const info = await stat(source).catch((cause: unknown) => {
    throw new GatewayError('GW_ERR_VULNDB_IMPORT_INVALID', { message: `Cannot read "${source}"`, cause });
  });
  if (info.isDirectory()) {
    yield* walkJson(source);
    return;
  }
  for await (const { entry, data } of readZip(source, {
    maxEntryBytes: maxBytes,
    filter: (name) => name.endsWith('.json'),
  })) {
    yield { name: entry.name, data };
  }
}

/**
 * Imports an OSV export (a per-ecosystem `all.zip` or a directory of `<id>.json` files) into
 * the store, in batches. Records not newer than the stored copy are skipped, so running it
 * again with a fresh export only writes what changed.
 */
export async function importOsv(
  store: VulndbStore,
  source: string,
  options: ImportOptions = {},
): Promise<ImportStats> {
  const stats: ImportStats = {
    read: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    invalid: 0,
    invalidSamples: [],
  };
  const batchSize = options.batchSize ?? 500;
  let batch: OsvRecord[] = [];
  const flush = async () => {
    const results = await store.upsertMany(batch);
    for (const r of results) stats[r] += 1;
    batch = [];
    options.onProgress?.(stats);
  };
  for await (const { name, data } of entriesOf(source, options.maxRecordBytes ?? 16 << 20)) {
    options.signal?.throwIfAborted();
    stats.read += 1;
    let record: OsvRecord | undefined;
    try {
      record = asOsvRecord(JSON.parse(data.toString('utf8')));
    } catch {
      record = undefined;
    }
    if (record === undefined) {
      stats.invalid += 1;
      if (stats.invalidSamples.length < 5) stats.invalidSamples.push(name);
      continue;
    }
    batch.push(record);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  return stats;
}
