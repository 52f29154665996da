/**
 * The PyPI JSON API (`/pypi/<project>/json`): refused releases are removed, `info.version` and
 * `urls` follow the newest remaining stable release, file URLs point at Gatehouse.
 */
import { comparePep440Parsed, isPep440Prerelease, parsePep440, type Pep440Version } from '#core/vulndb';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * When a release counts as published: the upload of its newest file (epoch ms; undefined when
 * no file has a time). A file added to an old release later (a new wheel) makes the release as
 * young as that file, so a minimum age cannot be passed by uploading into an old version.
 */
export function releaseTime(uploads: Iterable<number>): number | undefined {
  let newest: number | undefined;
  for (const t of uploads) if (Number.isFinite(t) && (newest === undefined || t > newest)) newest = t;
  return newest;
}

/** Release versions with the upload time of their newest file (epoch ms), from `releases`. */
export function releaseTimes(doc: unknown): Map<string, number | undefined> {
  if (!isObject(doc) || !isObject(doc['releases']) || !isObject(doc['info'])) {
    throw new SyntaxError('not a PyPI JSON API document ("info" and "releases" expected)');
  }
  const out = new Map<string, number | undefined>();
  for (const [version, files] of Object.entries(doc['releases'])) {
    if (!Array.isArray(files)) throw new SyntaxError(`release "${version}" is not a list`);
    out.set(
      version,
      releaseTime(
        files.map((f: unknown) =>
          isObject(f) && typeof f['upload_time_iso_8601'] === 'string'
            ? Date.parse(f['upload_time_iso_8601'])
            : Number.NaN,
        ),
      ),
    );
  }
  return out;
}

/** Upload times by file name, for upstream simple pages without PEP 700 `upload-time`. */
export function uploadTimesByFile(doc: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (!isObject(doc) || !isObject(doc['releases'])) return out;
  for (const files of Object.values(doc['releases'])) {
    if (!Array.isArray(files)) continue;
    for (const f of files) {
      if (isObject(f) && typeof f['filename'] === 'string' && typeof f['upload_time_iso_8601'] === 'string') {
        out.set(f['filename'], f['upload_time_iso_8601']);
      }
    }
  }
  return out;
}

function newestStable(versions: readonly string[]): string | undefined {
  let best: { text: string; v: Pep440Version } | undefined;
  for (const text of versions) {
    const v = parsePep440(text);
    if (v === undefined || isPep440Prerelease(v)) continue;
    if (best === undefined || comparePep440Parsed(v, best.v) > 0) best = { text, v };
  }
  return best?.text;
}

/** Renders the filtered document. */
export function renderJsonApi(doc: Json, refused: ReadonlySet<string>, fileBase: string): string {
  const releases: Json = {};
  const rewrite = (files: unknown[]) =>
    files.map((f) =>
      isObject(f) && typeof f['filename'] === 'string'
        ? { ...f, url: `${fileBase}${encodeURIComponent(f['filename'])}` }
        : f,
    );
  for (const [version, files] of Object.entries(doc['releases'] as Json)) {
    if (!refused.has(version)) releases[version] = rewrite(files as unknown[]);
  }
  const info = { ...(doc['info'] as Json) };
  const current = typeof info['version'] === 'string' ? info['version'] : undefined;
  const version =
    current !== undefined && !refused.has(current) ? current : newestStable(Object.keys(releases));
  if (version !== undefined) info['version'] = version;
  const urls = version === undefined ? [] : ((releases[version] as unknown[] | undefined) ?? []);
  const { vulnerabilities: _v, ...rest } = doc;
  return JSON.stringify({ ...rest, info, releases, urls });
}
