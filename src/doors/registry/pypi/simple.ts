/**
 * The PyPI simple repository API: PEP 503 HTML and PEP 691 JSON, with PEP 592 yanking, PEP 658
 * / 714 core metadata and PEP 700 upload times. Parsed from upstream into one file list and
 * rendered back in either form with URLs pointing at Gatehouse.
 */
import { formatPep440, normalizePypiName, parsePep440 } from '#core/vulndb';

/** One distribution file. */
export interface PypiFile {
  readonly filename: string;
  readonly url: string;
  readonly sha256?: string;
  readonly requiresPython?: string;
  /** `true`, or the reason text (PEP 592); absent when not yanked. */
  readonly yanked?: true | string;
  readonly uploadTime?: string;
  /**
   * When the door first saw a file that has no upload time while other files of its release do
   * (never rendered; see the PyPI handler's `dateUnknownFiles`).
   */
  readonly seenAt?: string;
  readonly size?: number;
  /** PEP 658/714: `true` or the digest of the `.metadata` file; absent when there is none. */
  readonly coreMetadata?: true | { readonly sha256?: string };
  readonly version: string;
}

export interface SimpleProject {
  readonly name: string;
  readonly files: readonly PypiFile[];
}

const SDIST = /\.(tar\.gz|tar\.bz2|tar\.xz|tgz|zip)$/i;

/**
 * The version in a wheel, egg or sdist file name of `project`, PEP 440 normalized when it parses
 * (`1.0.RC1` → `1.0rc1`), as PyPI names the release and so the vulnerability data does; a
 * legacy file name's own spelling would group its release apart and miss advisories that list
 * versions. Undefined when it cannot be found.
 */
export function versionOfFile(filename: string, project: string): string | undefined {
  const raw = rawVersionOfFile(filename, project);
  return raw === undefined ? undefined : normalizedVersion(raw);
}

/** A version in its PEP 440 normalized form (`1.0.RC1` is `1.0rc1`); as given when it is none. */
export function normalizedVersion(text: string): string {
  const parsed = parsePep440(text);
  return parsed === undefined ? text : formatPep440(parsed);
}

function rawVersionOfFile(filename: string, project: string): string | undefined {
  const wanted = normalizePypiName(project);
  if (/\.(whl|egg)$/i.test(filename)) {
    // Wheels escape `-` in the name to `_` (PEP 427), so the version is the second field.
    const parts = filename.split('-');
    return parts.length >= 3 && normalizePypiName(parts[0] as string) === wanted ? parts[1] : undefined;
  }
  const stem = filename.replace(SDIST, '');
  if (stem === filename) return undefined;
  // Legacy sdists keep `-` inside the name: try every split point and take the one whose prefix is the project.
  for (let i = stem.indexOf('-'); i > 0; i = stem.indexOf('-', i + 1)) {
    if (normalizePypiName(stem.slice(0, i)) === wanted) return stem.slice(i + 1);
  }
  return undefined;
}

const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function metadataOf(v: unknown): PypiFile['coreMetadata'] {
  if (v === true) return true;
  if (typeof v === 'object' && v !== null) {
    const sha = asString((v as Record<string, unknown>)['sha256']);
    return sha === undefined ? {} : { sha256: sha };
  }
  return undefined;
}

function yankedOf(v: unknown): PypiFile['yanked'] {
  if (v === true) return true;
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Parses a PEP 691 JSON page; throws SyntaxError when it is not one. */
export function parseSimpleJson(text: string, project: string, pageUrl: string): SimpleProject {
  const doc = JSON.parse(text) as Record<string, unknown>;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(doc['files'])) {
    throw new SyntaxError('not a PEP 691 project page (no "files" list)');
  }
  const files: PypiFile[] = [];
  for (const raw of doc['files'] as unknown[]) {
    const f = raw as Record<string, unknown>;
    const filename = asString(f['filename']);
    const url = asString(f['url']);
    if (filename === undefined || url === undefined)
      throw new SyntaxError('a file lacks "filename" or "url"');
    const version = versionOfFile(filename, project);
    if (version === undefined) continue;
    const hashes = (f['hashes'] ?? {}) as Record<string, unknown>;
    const sha256 = asString(hashes['sha256']);
    const requiresPython = asString(f['requires-python']);
    const yanked = yankedOf(f['yanked']);
    const uploadTime = asString(f['upload-time']);
    const coreMetadata = metadataOf(f['core-metadata'] ?? f['dist-info-metadata']);
    files.push({
      filename,
      url: new URL(url, pageUrl).toString(),
      version,
      ...(sha256 === undefined ? {} : { sha256 }),
      ...(requiresPython === undefined ? {} : { requiresPython }),
      ...(yanked === undefined ? {} : { yanked }),
      ...(uploadTime === undefined ? {} : { uploadTime }),
      ...(typeof f['size'] === 'number' ? { size: f['size'] } : {}),
      ...(coreMetadata === undefined ? {} : { coreMetadata }),
    });
  }
  return { name: normalizePypiName(project), files };
}

const ENTITIES: Readonly<Record<string, string>> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  '#39': "'",
  apos: "'",
};
const unescape = (s: string) =>
  s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e.startsWith('#x') || e.startsWith('#X'))
      return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(Number(e.slice(1)));
    return ENTITIES[e.toLowerCase()] ?? m;
  });
const escape = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Parses a PEP 503 HTML page: every `<a>` with an `href`; throws SyntaxError when there is no HTML. */
export function parseSimpleHtml(text: string, project: string, pageUrl: string): SimpleProject {
  if (!/<html|<a\s|<!doctype/i.test(text)) throw new SyntaxError('not an HTML project page');
  const files: PypiFile[] = [];
  // A quoted value may hold a raw `>` (valid HTML: data-requires-python=">=3.8"); an attribute
  // may have an unquoted value or none (a bare data-yanked means yanked, PEP 592).
  for (const m of text.matchAll(/<a\s((?:[^>"']|"[^"]*"|'[^']*')*)>([^<]*)<\/a>/gi)) {
    const attrs = new Map<string, string>();
    const list = /([a-zA-Z][\w:.-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>=`]+)))?/g;
    for (const a of (m[1] as string).matchAll(list)) {
      attrs.set((a[1] as string).toLowerCase(), unescape(a[2] ?? a[3] ?? a[4] ?? ''));
    }
    const href = attrs.get('href');
    const filename = unescape((m[2] as string).trim());
    if (href === undefined || filename === '') continue;
    const version = versionOfFile(filename, project);
    if (version === undefined) continue;
    const url = new URL(href, pageUrl);
    const sha256 = /^sha256=([0-9a-f]{64})$/i.exec(url.hash.slice(1))?.[1];
    url.hash = '';
    const meta = attrs.get('data-core-metadata') ?? attrs.get('data-dist-info-metadata');
    const metaSha = meta === undefined ? undefined : /^sha256=([0-9a-f]{64})$/i.exec(meta)?.[1];
    const yanked = attrs.get('data-yanked');
    const requiresPython = attrs.get('data-requires-python');
    files.push({
      filename,
      url: url.toString(),
      version,
      ...(sha256 === undefined ? {} : { sha256: sha256.toLowerCase() }),
      ...(requiresPython === undefined ? {} : { requiresPython }),
      ...(yanked === undefined ? {} : { yanked: yanked === '' ? true : yanked }),
      ...(meta === undefined ? {} : { coreMetadata: metaSha === undefined ? true : { sha256: metaSha } }),
    });
  }
  return { name: normalizePypiName(project), files };
}

/** What rendering needs besides the files: where links point and which files are refused. */
export interface RenderOptions {
  readonly fileBase: string;
  /** Refusal reason per version; those files are marked yanked with the reason (PEP 592). */
  readonly refused: ReadonlyMap<string, string>;
  /** `hidden` drops refused files instead of marking them yanked. */
  readonly mode: 'yanked' | 'hidden';
}

/**
 * A `.metadata` file announced without its sha256 (PEP 658 allows `true`) is not announced: the
 * door serves only bytes it can verify, and pip fails the install on a 404 for an announced
 * `.metadata` rather than reading the metadata from the wheel, which it does when none is announced.
 */
function servable(f: PypiFile): PypiFile {
  if (f.coreMetadata === undefined || (f.coreMetadata !== true && f.coreMetadata.sha256 !== undefined))
    return f;
  const { coreMetadata: _, ...rest } = f;
  return rest;
}

function shown(p: SimpleProject, o: RenderOptions): PypiFile[] {
  return p.files.flatMap((raw) => {
    const f = servable(raw);
    const reason = o.refused.get(f.version);
    if (reason === undefined) return [f];
    if (o.mode === 'hidden') return [];
    return [{ ...f, yanked: `Refused by Gatehouse: ${reason}` }];
  });
}

const fileUrl = (o: RenderOptions, f: PypiFile) => `${o.fileBase}${encodeURIComponent(f.filename)}`;

/** PEP 691 JSON, API version 1.1 (with `versions`, `size` and `upload-time`). */
export function renderSimpleJson(p: SimpleProject, o: RenderOptions): string {
  const files = shown(p, o);
  return JSON.stringify({
    meta: { 'api-version': '1.1' },
    name: p.name,
    versions: [...new Set(files.map((f) => f.version))],
    files: files.map((f) => ({
      filename: f.filename,
      url: fileUrl(o, f),
      hashes: f.sha256 === undefined ? {} : { sha256: f.sha256 },
      ...(f.requiresPython === undefined ? {} : { 'requires-python': f.requiresPython }),
      ...(f.yanked === undefined ? {} : { yanked: f.yanked }),
      ...(f.uploadTime === undefined ? {} : { 'upload-time': f.uploadTime }),
      ...(f.size === undefined ? {} : { size: f.size }),
      ...(f.coreMetadata === undefined
        ? {}
        : { 'core-metadata': f.coreMetadata, 'dist-info-metadata': f.coreMetadata }),
    })),
  });
}

/** PEP 503 HTML with the PEP 629 version meta tag. */
export function renderSimpleHtml(p: SimpleProject, o: RenderOptions): string {
  const links = shown(p, o).map((f) => {
    const hash = f.sha256 === undefined ? '' : `#sha256=${f.sha256}`;
    let attrs = `href="${escape(fileUrl(o, f) + hash)}"`;
    if (f.requiresPython !== undefined) attrs += ` data-requires-python="${escape(f.requiresPython)}"`;
    if (f.yanked !== undefined) attrs += ` data-yanked="${f.yanked === true ? '' : escape(f.yanked)}"`;
    if (f.coreMetadata !== undefined) {
      const v =
        f.coreMetadata === true || f.coreMetadata.sha256 === undefined
          ? 'true'
          : `sha256=${f.coreMetadata.sha256}`;
      attrs += ` data-core-metadata="${v}" data-dist-info-metadata="${v}"`;
    }
    return `    <a ${attrs}>${escape(f.filename)}</a><br/>`;
  });
  return `<!DOCTYPE html>\n<html>\n  <head>\n    <meta name="pypi:repository-version" content="1.1">\n    <title>Links for ${escape(p.name)}</title>\n  </head>\n  <body>\n    <h1>Links for ${escape(p.name)}</h1>\n${links.join('\n')}\n  </body>\n</html>\n`;
}

/** PEP 691 content negotiation: the variant and media type to answer, or undefined for 406. */
export function negotiate(
  accept: string | undefined,
): { variant: 'json' | 'html'; type: string } | undefined {
  const offers: [string, 'json' | 'html', string][] = [
    ['application/vnd.pypi.simple.v1+json', 'json', 'application/vnd.pypi.simple.v1+json'],
    ['application/vnd.pypi.simple.latest+json', 'json', 'application/vnd.pypi.simple.v1+json'],
    ['application/vnd.pypi.simple.v1+html', 'html', 'application/vnd.pypi.simple.v1+html'],
    ['application/vnd.pypi.simple.latest+html', 'html', 'application/vnd.pypi.simple.v1+html'],
    ['text/html', 'html', 'text/html'],
  ];
  if (accept === undefined || accept.trim() === '') return { variant: 'html', type: 'text/html' };
  let best: { variant: 'json' | 'html'; type: string; q: number } | undefined;
  for (const part of accept.split(',')) {
    const [range, ...params] = part.trim().split(';');
    const q = Number(params.map((p) => /^\s*q=([\d.]+)/.exec(p)?.[1]).find((x) => x !== undefined) ?? 1);
    const r = (range ?? '').trim().toLowerCase();
    const match = r === '*/*' || r === 'text/*' ? offers[4] : offers.find((o) => o[0] === r);
    if (match === undefined || !(q > 0)) continue;
    if (best === undefined || q > best.q) best = { variant: match[1], type: match[2], q };
  }
  return best === undefined ? undefined : { variant: best.variant, type: best.type };
}
