/**
 * npm packument filtering (registry API "package metadata"): pure functions shared by the main
 * thread and the packument worker. Refused versions leave `versions` and `time`, dist-tags are
 * recomputed, tarball URLs point at Gatehouse; `dist.integrity` and `dist.signatures` are
 * copied byte-for-byte in meaning (never recomputed).
 */
import { compareSemverParsed, parseSemver, type SemVer } from '#core/vulndb';

/** Per-version facts that policy and tarball serving need. */
export interface VersionFacts {
  readonly version: string;
  readonly publishedAt?: number;
  readonly integrity?: string;
  readonly shasum?: string;
  readonly tarball?: string;
}

/** What the main thread needs from a packument: small enough to post between threads. */
export interface PackumentSummary {
  readonly name: string;
  readonly versions: readonly VersionFacts[];
  readonly distTags: Readonly<Record<string, string>>;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Thrown for a document that is not a packument; the caller maps it to GW_ERR_REGISTRY_UPSTREAM_INVALID. */
export class MalformedPackument extends Error {
  override readonly name = 'MalformedPackument';
}

/** Checks the shape of a parsed packument and extracts the facts of every version. */
export function summarize(doc: unknown, expectedName: string): PackumentSummary {
  if (!isObject(doc)) throw new MalformedPackument('the document is not a JSON object');
  if (doc['name'] !== expectedName)
    throw new MalformedPackument(`the document names "${String(doc['name'])}"`);
  const versions = doc['versions'] ?? {};
  const time = isObject(doc['time']) ? doc['time'] : {};
  const tags = doc['dist-tags'] ?? {};
  if (!isObject(versions) || !isObject(tags))
    throw new MalformedPackument('"versions" or "dist-tags" is not an object');
  const out: VersionFacts[] = [];
  for (const [version, manifest] of Object.entries(versions)) {
    if (!isObject(manifest) || parseSemver(version) === undefined) continue;
    const dist = isObject(manifest['dist']) ? manifest['dist'] : {};
    const t = typeof time[version] === 'string' ? Date.parse(time[version] as string) : Number.NaN;
    out.push({
      version,
      ...(Number.isFinite(t) ? { publishedAt: t } : {}),
      ...(typeof dist['integrity'] === 'string' ? { integrity: dist['integrity'] } : {}),
      ...(typeof dist['shasum'] === 'string' ? { shasum: dist['shasum'] } : {}),
      ...(typeof dist['tarball'] === 'string' ? { tarball: dist['tarball'] } : {}),
    });
  }
  const distTags: Record<string, string> = {};
  for (const [tag, v] of Object.entries(tags)) if (typeof v === 'string') distTags[tag] = v;
  return { name: expectedName, versions: out, distTags };
}

function newestBelow(
  target: SemVer | undefined,
  kept: readonly SemVer[],
  stable: boolean,
): SemVer | undefined {
  let best: SemVer | undefined;
  for (const v of kept) {
    if (stable && v.prerelease.length > 0) continue;
    if (target !== undefined && compareSemverParsed(v, target) > 0) continue;
    if (best === undefined || compareSemverParsed(v, best) > 0) best = v;
  }
  return best;
}

/**
 * Recomputes dist-tags over the kept versions: a tag on a refused version moves to the newest
 * kept version not above it (stable only for `latest` and for tags that pointed at a stable
 * version); a tag with no candidate is dropped. `latest` falls back to the newest stable version.
 */
export function recomputeDistTags(
  tags: Readonly<Record<string, string>>,
  keptVersions: readonly string[],
): Record<string, string> {
  const kept = keptVersions.map(parseSemver).filter((v): v is SemVer => v !== undefined);
  const keptSet = new Set(keptVersions);
  const out: Record<string, string> = {};
  for (const [tag, target] of Object.entries(tags)) {
    if (keptSet.has(target)) {
      out[tag] = target;
      continue;
    }
    const t = parseSemver(target);
    const stable = tag === 'latest' || (t !== undefined && t.prerelease.length === 0);
    const pick =
      newestBelow(t, kept, stable) ?? (tag === 'latest' ? newestBelow(undefined, kept, true) : undefined);
    if (pick !== undefined)
      out[tag] = keptVersions.find(
        (v) => compareSemverParsed(parseSemver(v) as SemVer, pick) === 0,
      ) as string;
  }
  if (out['latest'] === undefined) {
    const fallback = newestBelow(undefined, kept, true) ?? newestBelow(undefined, kept, false);
    if (fallback !== undefined)
      out['latest'] = keptVersions.find(
        (v) => compareSemverParsed(parseSemver(v) as SemVer, fallback) === 0,
      ) as string;
  }
  return out;
}

// The fields of the abbreviated ("corgi") manifest, per npm's registry documentation.
export const ABBREVIATED_FIELDS = [
  'name',
  'version',
  'deprecated',
  'dependencies',
  'optionalDependencies',
  'devDependencies',
  'bundleDependencies',
  'bundledDependencies',
  'peerDependencies',
  'peerDependenciesMeta',
  'acceptDependencies',
  'bin',
  'directories',
  'dist',
  'engines',
  'cpu',
  'os',
  'libc',
  'funding',
  '_hasShrinkwrap',
  'hasInstallScript',
] as const;

export interface RenderOptions {
  /** Versions refused by policy. */
  readonly denied: ReadonlySet<string>;
  /** Prefix of rewritten tarball URLs, e.g. `http://127.0.0.1:7070/npm/@scope/pkg/-/`. */
  readonly tarballBase: string;
}

/** Renders the filtered full and abbreviated packuments as JSON text. */
export function renderPackument(
  doc: Json,
  summary: PackumentSummary,
  options: RenderOptions,
): { full: string; abbreviated: string } {
  const base = summary.name.slice(summary.name.lastIndexOf('/') + 1);
  const versions = doc['versions'] as Json;
  const time = isObject(doc['time']) ? doc['time'] : {};
  const fullVersions: Json = {};
  const abbrVersions: Json = {};
  const keptTime: Json = {};
  for (const key of ['created', 'modified']) if (time[key] !== undefined) keptTime[key] = time[key];
  const kept: string[] = [];
  for (const facts of summary.versions) {
    if (options.denied.has(facts.version)) continue;
    const manifest = versions[facts.version] as Json;
    const dist = {
      ...(manifest['dist'] as Json),
      tarball: `${options.tarballBase}${base}-${facts.version}.tgz`,
    };
    const rewritten: Json = { ...manifest, dist };
    fullVersions[facts.version] = rewritten;
    const abbr: Json = {};
    for (const f of ABBREVIATED_FIELDS) if (rewritten[f] !== undefined) abbr[f] = rewritten[f];
    abbrVersions[facts.version] = abbr;
    if (time[facts.version] !== undefined) keptTime[facts.version] = time[facts.version];
    kept.push(facts.version);
  }
  const distTags = recomputeDistTags(summary.distTags, kept);
  const full = { ...doc, 'dist-tags': distTags, versions: fullVersions, time: keptTime };
  const modified = typeof time['modified'] === 'string' ? time['modified'] : doc['modified'];
  const abbreviated = {
    name: summary.name,
    'dist-tags': distTags,
    versions: abbrVersions,
    ...(modified === undefined ? {} : { modified }),
    // npm and pnpm age gates (`--before`, `minimumReleaseAge`) read `time` from the abbreviated form too.
    time: keptTime,
  };
  return { full: JSON.stringify(full), abbreviated: JSON.stringify(abbreviated) };
}
