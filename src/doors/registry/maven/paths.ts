/**
 * Maven 2 repository layout paths: `<group as folders>/<artifactId>/maven-metadata.xml` and
 * `<group as folders>/<artifactId>/<version>/<artifactId>-<version>[-classifier].<ext>`, each
 * with optional `.md5`/`.sha1`/`.sha256`/`.sha512` checksum sidecars.
 */
import { GatewayError } from '#core/errors';

export const SIDECARS = ['md5', 'sha1', 'sha256', 'sha512'] as const;
export type Sidecar = (typeof SIDECARS)[number];

export type MavenRequest =
  | {
      readonly kind: 'metadata';
      readonly groupId: string;
      readonly artifactId: string;
      readonly base: string;
      /** Set for a snapshot's own metadata (`<artifact>/<x>-SNAPSHOT/maven-metadata.xml`). */
      readonly version?: string;
      readonly sidecar?: Sidecar;
    }
  | {
      readonly kind: 'file';
      readonly groupId: string;
      readonly artifactId: string;
      readonly version: string;
      readonly file: string;
      readonly base: string;
      readonly sidecar?: Sidecar;
    };

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._+-]{0,199}$/;

function invalid(path: string, why: string): GatewayError {
  return new GatewayError('GW_ERR_REGISTRY_NAME_INVALID', {
    message: `Invalid Maven path "${path.slice(0, 300)}": ${why}`,
    details: { ecosystem: 'maven' },
  });
}

/**
 * Parses the path after `/maven/`; undefined for paths that are not repository paths. A
 * `maven-metadata.xml` is the artifact's, a snapshot version's, or (told apart by its content
 * only) a group's plugin prefixes.
 */
export function parseMavenPath(path: string): MavenRequest | undefined {
  const segments = path.split('/');
  for (const s of segments)
    if (!SEGMENT.test(s) || s.includes('..')) throw invalid(path, `bad segment "${s.slice(0, 80)}"`);
  let last = segments.at(-1) as string;
  const ext = SIDECARS.find((c) => last.endsWith(`.${c}`));
  if (ext !== undefined) last = last.slice(0, -ext.length - 1);
  const sidecar = ext === undefined ? {} : { sidecar: ext };
  if (last === 'maven-metadata.xml') {
    if (segments.length < 3) return undefined;
    // Only snapshot versions have metadata of their own (their timestamped builds).
    const version = segments.at(-2) as string;
    if (segments.length >= 4 && version.endsWith('-SNAPSHOT'))
      return {
        kind: 'metadata',
        groupId: segments.slice(0, -3).join('.'),
        artifactId: segments.at(-3) as string,
        base: segments.slice(0, -2).join('/'),
        version,
        ...sidecar,
      };
    const artifactId = segments.at(-2) as string;
    const groupId = segments.slice(0, -2).join('.');
    return { kind: 'metadata', groupId, artifactId, base: segments.slice(0, -1).join('/'), ...sidecar };
  }
  if (segments.length < 4) return undefined;
  const version = segments.at(-2) as string;
  const artifactId = segments.at(-3) as string;
  if (!last.startsWith(`${artifactId}-`))
    throw invalid(path, `file "${last}" is not of artifact "${artifactId}"`);
  return {
    kind: 'file',
    groupId: segments.slice(0, -3).join('.'),
    artifactId,
    version,
    file: last,
    base: segments.slice(0, -2).join('/'),
    ...sidecar,
  };
}
