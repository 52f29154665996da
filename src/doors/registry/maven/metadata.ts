/**
 * `maven-metadata.xml` at the artifact level (Maven Repository Metadata 1.1.0): the versions of
 * one groupId:artifactId. The door renders a filtered copy whose `latest`, `release` and
 * `lastUpdated` are recomputed from the versions that passed policy.
 */
import { compareMaven, isMavenPrerelease, parseMavenVersion } from '#core/vulndb';
import { child, escapeXml, parseXml } from './xml.ts';

export interface MavenMetadata {
  readonly groupId: string;
  readonly artifactId: string;
  readonly versions: readonly string[];
  readonly lastUpdated?: string;
  /**
   * Group-level metadata (the plugin prefixes of a group, `<plugins>` and no `<versioning>`):
   * it sits where an artifact's would, names no versions and is served as it is.
   */
  readonly plugins?: boolean;
}

const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

/** Parses artifact-level metadata; throws SyntaxError (XML bombs included) or on a foreign artifact. */
export function parseMavenMetadata(text: string, groupId: string, artifactId: string): MavenMetadata {
  const root = parseXml(text);
  if (root.name !== 'metadata') throw new SyntaxError(`Root element is "${root.name}", not "metadata"`);
  const g = child(root, 'groupId')?.text.trim();
  const a = child(root, 'artifactId')?.text.trim();
  if ((g !== undefined && g !== groupId) || (a !== undefined && a !== artifactId))
    throw new SyntaxError(`Metadata names "${g}:${a}", not "${groupId}:${artifactId}"`);
  const versioning = child(root, 'versioning');
  if (versioning === undefined && g === undefined && child(root, 'plugins') !== undefined)
    return { groupId, artifactId, versions: [], plugins: true };
  const versions = (child(versioning, 'versions')?.children ?? [])
    .filter((c) => c.name === 'version')
    .map((c) => c.text.trim())
    .filter((v) => VERSION.test(v) && !v.includes('..'));
  const lastUpdated = child(versioning, 'lastUpdated')?.text.trim();
  return { groupId, artifactId, versions: [...new Set(versions)], ...(lastUpdated ? { lastUpdated } : {}) };
}

/**
 * Checks a snapshot version's own metadata (its timestamped builds) before it is served as it
 * is; throws SyntaxError (XML bombs included) or when it names another artifact or version.
 */
export function checkSnapshotMetadata(
  text: string,
  groupId: string,
  artifactId: string,
  version: string,
): void {
  const root = parseXml(text);
  if (root.name !== 'metadata') throw new SyntaxError(`Root element is "${root.name}", not "metadata"`);
  const [g, a, v] = ['groupId', 'artifactId', 'version'].map((n) => child(root, n)?.text.trim());
  if ((g ?? groupId) !== groupId || (a ?? artifactId) !== artifactId || (v ?? version) !== version)
    throw new SyntaxError(`Metadata names "${g}:${a}:${v}", not "${groupId}:${artifactId}:${version}"`);
}

/** `yyyyMMddHHmmss` in UTC, Maven's timestamp format. */
export const mavenTimestamp = (ms: number): string =>
  new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14);

/** The newest version, and the newest non-snapshot/pre-release one (Maven's LATEST and RELEASE). */
export function latestAndRelease(versions: readonly string[]): { latest?: string; release?: string } {
  const sorted = [...versions].sort(compareMaven);
  const release = sorted.filter((v) => !isMavenPrerelease(parseMavenVersion(v) as never)).at(-1);
  const latest = sorted.at(-1);
  return { ...(latest === undefined ? {} : { latest }), ...(release === undefined ? {} : { release }) };
}

/** Renders filtered metadata; `versions` keeps upstream order (Maven sorts itself). */
export function renderMavenMetadata(m: MavenMetadata, lastUpdated: string): string {
  const { latest, release } = latestAndRelease(m.versions);
  const line = (tag: string, value: string | undefined, indent: string) =>
    value === undefined ? '' : `${indent}<${tag}>${escapeXml(value)}</${tag}>\n`;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<metadata>\n' +
    line('groupId', m.groupId, '  ') +
    line('artifactId', m.artifactId, '  ') +
    '  <versioning>\n' +
    line('latest', latest, '    ') +
    line('release', release, '    ') +
    '    <versions>\n' +
    m.versions.map((v) => line('version', v, '      ')).join('') +
    '    </versions>\n' +
    line('lastUpdated', lastUpdated, '    ') +
    '  </versioning>\n</metadata>\n'
  );
}
