/**
 * Lookups in a Go checksum database (go.dev/ref/mod#checksum-database): `<url>/lookup/<module>@<version>`
 * answers the `go.sum` lines of one version followed by a signed tree head. The lines give the
 * `h1:` hashes a module zip and its go.mod must have.
 */
import { escapeGoPath } from './paths.ts';
import { fetchSmall } from './upstream.ts';
import type { UplinkClient } from '../uplink/client.ts';
import {
  checkConsistent,
  openNote,
  parseTreeHead,
  recordHash,
  rootWithRecord,
  SumdbVerificationError,
  type SumdbVerifier,
  splitLookup,
  type TileReader,
  type TreeHead,
} from './tlog.ts';

/** The newest tree head verified so far, so that every later one can be checked against it. */
export interface TreeHeadStore {
  latest(): Promise<TreeHead | undefined>;
  remember(head: TreeHead): Promise<void>;
}

/** The two hashes of one module version. */
export interface GoSums {
  readonly zip?: string;
  readonly mod?: string;
}

/** Reads the `go.sum` lines of a lookup answer for exactly this module and version. */
export function parseLookup(text: string, module: string, version: string): GoSums {
  let zip: string | undefined;
  let mod: string | undefined;
  for (const line of text.split('\n')) {
    const parts = line.trim().split(' ');
    if (parts.length !== 3 || parts[0] !== module) continue;
    const hash = parts[2] as string;
    if (!/^h1:[A-Za-z0-9+/]{43}=$/.test(hash)) continue;
    if (parts[1] === version) zip = hash;
    else if (parts[1] === `${version}/go.mod`) mod = hash;
  }
  return { ...(zip === undefined ? {} : { zip }), ...(mod === undefined ? {} : { mod }) };
}

/** A lookup answer: its whole text, and the record whose `go.sum` lines count. */
export interface LookupAnswer {
  readonly text: string;
  readonly record: string;
}

/** The largest lookup answer read (a record of a few lines and a signed tree head). */
const MAX_LOOKUP = 1 << 16;

/**
 * Asks the checksum database; undefined when it does not know the version (404/410). With a
 * verifier, the answer counts only when its tree head is signed by that key, its record is
 * proven into the tree, and the tree is consistent with the newest one seen before (throws
 * SumdbVerificationError otherwise); only the proven record's lines are read then.
 */
export async function fetchLookup(
  client: UplinkClient,
  module: string,
  version: string,
  verifier?: SumdbVerifier,
  readTile?: TileReader,
  heads?: TreeHeadStore,
): Promise<LookupAnswer | undefined> {
  let body: Buffer;
  try {
    ({ body } = await fetchSmall(
      client,
      client.resolve(`lookup/${escapeGoPath(module)}@${escapeGoPath(version)}`),
      `${module}@${version}`,
      MAX_LOOKUP,
    ));
  } catch (error) {
    if ((error as { code?: string }).code === 'GW_ERR_REGISTRY_NOT_FOUND') return undefined;
    throw error;
  }
  const text = body.toString('utf8');
  if (verifier === undefined || readTile === undefined) return { text, record: text };
  const { id, record, note } = splitLookup(text);
  const head = parseTreeHead(openNote(note, verifier));
  const root = await rootWithRecord(head.size, id, recordHash(record), readTile);
  if (!root.equals(head.hash)) throw new SumdbVerificationError(`record ${id} is not in the signed tree`);
  const known = await heads?.latest();
  if (known !== undefined) await checkConsistent(known, head, readTile);
  if (known === undefined || head.size > known.size) await heads?.remember(head);
  return { text, record };
}
