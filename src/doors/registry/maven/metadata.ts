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

/** A snapshot version's own metadata (its timestamped builds), checked. */
export interface SnapshotMetadata {
  /**
   * The timestamped builds it names (`<base>-<yyyyMMdd.HHmmss>-<buildNumber>`, from `<snapshot>`
   * and each `<snapshotVersion>`), newest first.
   */
  readonly builds: readonly string[];
}

const BUILD = /^(.+)-(\d{8}\.\d{6})-([1-9]\d{0,8})$/;

/**
 * The build a timestamped snapshot name stands for: its version (`1.0-SNAPSHOT` for
 * `1.0-20261204.101500-3`), the time it claims (UTC, as deploy tools write it) and its number;
 * undefined for any other name.
 */
export function snapshotBuild(
  value: string,
): { readonly version: string; readonly claimed: string; readonly number: number } | undefined {
  const m = BUILD.exec(value);
  if (m === null) return undefined;
  const [, base, ts, n] = m as unknown as [string, string, string, string];
  const iso = `${ts.slice(0, 4)}-${ts.slice(4, 6)}-${ts.slice(6, 8)}T${ts.slice(9, 11)}:${ts.slice(11, 13)}:${ts.slice(13, 15)}Z`;
  return { version: `${base}-SNAPSHOT`, claimed: iso, number: Number(n) };
}

/** Orders builds newest first: by claimed time, then by build number. */
const newestFirst = (a: string, b: string): number => {
  const x = snapshotBuild(a);
  const y = snapshotBuild(b);
  if (x === undefined || y === undefined) return 0;
  return x.claimed === y.claimed ? y.number - x.number : x.claimed < y.claimed ? 1 : -1;
};

/**
 * Parses a snapshot version's own metadata before it is served; throws SyntaxError (XML bombs
 * included) or when it names another artifact or version. Names that are not builds of
 * `version` (a `localCopy` snapshot's plain names) are left out of `builds`.
 */
export function parseSnapshotMetadata(
  text: string,
  groupId: string,
  artifactId: string,
  version: string,
): SnapshotMetadata {
  const root = parseXml(text);
  if (root.name !== 'metadata') throw new SyntaxError(`Root element is "${root.name}", not "metadata"`);
  const [g, a, v] = ['groupId', 'artifactId', 'version'].map((n) => child(root, n)?.text.trim());
  if ((g ?? groupId) !== groupId || (a ?? artifactId) !== artifactId || (v ?? version) !== version)
    throw new SyntaxError(`Metadata names "${g}:${a}:${v}", not "${groupId}:${artifactId}:${version}"`);
  const versioning = child(root, 'versioning');
  const snapshot = child(versioning, 'snapshot');
  const base = version.slice(0, -'-SNAPSHOT'.length);
  const names = (child(versioning, 'snapshotVersions')?.children ?? [])
    .filter((c) => c.name === 'snapshotVersion')
    .map((c) => child(c, 'value')?.text.trim() ?? '');
  const timestamp = child(snapshot, 'timestamp')?.text.trim();
  const number = child(snapshot, 'buildNumber')?.text.trim();
  if (timestamp !== undefined && number !== undefined) names.push(`${base}-${timestamp}-${number}`);
  const builds = [...new Set(names)].filter((n) => snapshotBuild(n)?.version === version);
  return { builds: builds.toSorted(newestFirst) };
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
