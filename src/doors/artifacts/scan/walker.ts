import { createGunzip } from 'node:zlib';
import { isGatewayError } from '#core/errors';
import { throughZlib } from './inflate.ts';
import { archiveInvalid, isTraversal, type ScanBudget } from './limits.ts';
import { type FoundPackage, manifestParser } from './manifests.ts';
import { readTar } from './tar.ts';
import {
  bufferAccess,
  listZipItems,
  looksLikeZip,
  openZipItem,
  type RandomAccess,
  verifyZipItem,
  type ZipItem,
} from './zip.ts';

/** Something wrong inside an artifact that did not stop the scan (or did, for limits). */
export interface ScanProblem {
  readonly path: string;
  readonly code: string;
  readonly message: string;
}

interface Located {
  readonly pkg: FoundPackage;
  /** Layer of an image tarball the package came from, and its path inside that layer. */
  readonly layer?: string;
  readonly layerPath?: string;
}

/** What a walk collects. */
export class WalkState {
  readonly budget: ScanBudget;
  readonly found: Located[] = [];
  readonly problems: ScanProblem[] = [];
  readonly whiteouts = new Map<string, string[]>();
  /** Small JSON files at the top of an image tarball (manifest.json, index.json, blobs). */
  readonly imageJson = new Map<string, unknown>();
  files = 0;
  constructor(budget: ScanBudget) {
    this.budget = budget;
  }
}

interface Where {
  readonly path: string;
  readonly depth: number;
  readonly layer?: string;
  readonly layerPath?: string;
}

const NESTED_ZIP = /\.(jar|war|ear|zip|whl|nupkg|apk|aar)$/i;
const NESTED_TAR = /\.(tgz|tar\.gz|tar|crate|gem)$/i;
const LAYER = /^(blobs\/sha256\/[0-9a-f]{64}|[^/]+\/layer\.tar)$/;

async function readAll(source: AsyncIterable<Buffer>, limit: number, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    size += chunk.length;
    if (size > limit)
      throw archiveInvalid(`Entry "${path}" is larger than the ${limit}-byte scan buffer`, { path });
    parts.push(chunk);
  }
  return Buffer.concat(parts, size);
}

/** Reads the first bytes of a stream and returns them with a stream that replays them. */
async function peek(
  source: AsyncIterable<Buffer>,
  n: number,
): Promise<{ head: Buffer; stream: AsyncIterable<Buffer> }> {
  const iterator = source[Symbol.asyncIterator]();
  const taken: Buffer[] = [];
  let size = 0;
  while (size < n) {
    const next = await iterator.next();
    if (next.done === true) break;
    taken.push(next.value);
    size += next.value.length;
  }
  async function* replay(): AsyncGenerator<Buffer> {
    yield* taken;
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value;
  }
  return { head: Buffer.concat(taken, size), stream: replay() };
}

async function* gunzip(
  source: AsyncIterable<Buffer>,
  state: WalkState,
  path: string,
): AsyncGenerator<Buffer> {
  try {
    yield* throughZlib(createGunzip(), source, (compressed, expanded) =>
      state.budget.ratio(compressed, expanded, path),
    );
  } catch (error) {
    if (isGatewayError(error)) throw error;
    throw archiveInvalid(`"${path}" is not valid gzip`, { path });
  }
}

function record(state: WalkState, where: Where, packages: readonly FoundPackage[]): void {
  for (const pkg of packages) {
    state.found.push({
      pkg,
      ...(where.layer === undefined ? {} : { layer: where.layer, layerPath: where.layerPath ?? '' }),
    });
  }
}

async function parseManifest(state: WalkState, where: Where, body: AsyncIterable<Buffer>): Promise<void> {
  const parser = manifestParser(where.path);
  if (parser === undefined) return;
  const text = (await readAll(body, 32 * 1024 * 1024, where.path)).toString('utf8');
  try {
    record(state, where, parser(where.path, text));
  } catch (error) {
    if (!isGatewayError(error) || error.code !== 'GW_ERR_ARTIFACTS_MANIFEST_INVALID') throw error;
    state.problems.push({ path: where.path, code: error.code, message: error.message });
  }
}

/** Walks one stream: a gzip, tar, zip or a plain file that may be a manifest. */
export async function walkStream(
  state: WalkState,
  where: Where,
  source: AsyncIterable<Buffer>,
): Promise<void> {
  const { head, stream } = await peek(source, 512);
  if (head[0] === 0x1f && head[1] === 0x8b) {
    await walkStream(
      state,
      { ...where, path: where.path.replace(/\.(gz|tgz)$/i, (m) => (m === '.tgz' ? '.tar' : '')) },
      gunzip(stream, state, where.path),
    );
    return;
  }
  if (head.length >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar') {
    await walkTar(state, where, stream);
    return;
  }
  if (looksLikeZip(head)) {
    const buf = await readAll(stream, state.budget.limits.maxBufferedFile, where.path);
    await walkZip(state, where, bufferAccess(buf));
    return;
  }
  await parseManifest(state, where, stream);
}

function entryWhere(where: Where, name: string, inLayer: boolean, isLayer: boolean): Where {
  const path = `${where.path}!/${name}`;
  if (isLayer) return { path, depth: where.depth + 1, layer: name, layerPath: '' };
  if (inLayer && where.layerPath === '')
    return { ...where, path, depth: where.depth + 1, layerPath: name.replace(/^\.\//, '') };
  return { ...where, path, depth: where.depth + 1 };
}

function checkName(state: WalkState, where: Where, name: string): boolean {
  state.budget.entry(`${where.path}!/${name}`);
  if (!isTraversal(name)) return true;
  state.problems.push({
    path: `${where.path}!/${name}`,
    code: 'GW_ERR_ARTIFACTS_ARCHIVE_INVALID',
    message: `Entry name "${name}" escapes the archive (path traversal)`,
  });
  return false;
}

async function walkTar(state: WalkState, where: Where, source: AsyncIterable<Buffer>): Promise<void> {
  state.budget.depth(where.depth + 1, where.path);
  const top = where.depth === 0;
  const inLayer = where.layer !== undefined && where.layerPath === '';
  for await (const entry of readTar(source)) {
    if (!checkName(state, where, entry.name)) continue;
    if (entry.type !== 'file') continue;
    state.files += 1;
    state.budget.bytes(entry.size, where.path);
    const name = entry.name.replace(/^\.\//, '');
    if (inLayer) {
      const base = name.slice(name.lastIndexOf('/') + 1);
      if (base.startsWith('.wh.')) {
        const list = state.whiteouts.get(where.layer ?? '') ?? [];
        list.push(name);
        state.whiteouts.set(where.layer ?? '', list);
        continue;
      }
    }
    const isLayer = top && LAYER.test(name);
    const next = entryWhere(where, name, inLayer, isLayer);
    if (
      top &&
      (name === 'manifest.json' ||
        name === 'index.json' ||
        (name.startsWith('blobs/') && entry.size < 1024 * 1024))
    ) {
      const data = await readAll(entry.body, 1024 * 1024, next.path);
      if (data[0] === 0x7b || data[0] === 0x5b) {
        try {
          state.imageJson.set(name, JSON.parse(data.toString('utf8')));
        } catch {
          // Not JSON after all: an ordinary small file.
        }
        continue;
      }
      async function* again(): AsyncGenerator<Buffer> {
        yield data;
      }
      if (isLayer) await walkStream(state, next, again());
      continue;
    }
    if (isLayer || NESTED_TAR.test(name) || NESTED_ZIP.test(name)) await walkStream(state, next, entry.body);
    else if (manifestParser(next.path) !== undefined) await parseManifest(state, next, entry.body);
  }
}

/**
 * Counts what a ZIP declares before reading any of it: every entry's size and ratio, and the whole
 * archive's, whether or not the walk parses the entry (five 200 MB entries of zeros are a bomb
 * even when none of them is a manifest).
 */
function checkDeclared(state: WalkState, where: Where, access: RandomAccess, items: readonly ZipItem[]) {
  let declared = 0;
  for (const item of items) {
    state.budget.ratio(item.compressedSize, item.size, `${where.path}!/${item.name}`);
    declared += item.size;
  }
  state.budget.ratio(access.size, declared, where.path);
  state.budget.bytes(declared, where.path);
}

async function walkZip(state: WalkState, where: Where, access: RandomAccess): Promise<void> {
  state.budget.depth(where.depth + 1, where.path);
  const items = await listZipItems(access);
  checkDeclared(state, where, access, items);
  for (const item of items) {
    if (!checkName(state, where, item.name) || item.isDirectory) continue;
    state.files += 1;
    const next = entryWhere(where, item.name, false, false);
    const wanted =
      NESTED_ZIP.test(item.name) || NESTED_TAR.test(item.name) || manifestParser(next.path) !== undefined;
    // Entries the walk does not parse are still inflated: their declared size must hold.
    if (wanted) await walkStream(state, next, openZipItem(access, item, state.budget, next.path));
    else await verifyZipItem(access, item, state.budget, next.path);
  }
}

/** Walks an artifact with random access (a top-level ZIP is read by range, never buffered). */
export async function walkArtifact(
  state: WalkState,
  name: string,
  access: RandomAccess,
  stream: () => Promise<AsyncIterable<Buffer>>,
): Promise<void> {
  const head = access.size === 0 ? Buffer.alloc(0) : await access.read(0, Math.min(access.size, 512) - 1);
  const where = { path: name, depth: 0 };
  if (looksLikeZip(head)) {
    await walkZip(state, where, access);
    return;
  }
  // The walk stops reading where it has seen enough (a file that is no archive and no manifest
  // is not read at all past its head); ending the stream here closes the stored blob's file.
  const iterator = (await stream())[Symbol.asyncIterator]();
  try {
    await walkStream(state, where, { [Symbol.asyncIterator]: () => iterator });
  } finally {
    await iterator.return?.();
  }
}
