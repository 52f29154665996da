import { GatewayError } from '#core/errors';
import { parse as parseYaml } from 'yaml';

/** Package ecosystems the scanner reports (OSV ecosystem names in `osvEcosystem`). */
export type PackageEcosystem = 'npm' | 'pypi' | 'go' | 'maven' | 'cargo' | 'rubygems' | 'composer';

/** One package found in an artifact. */
export interface FoundPackage {
  readonly ecosystem: PackageEcosystem;
  readonly name: string;
  readonly version: string;
  /** Where it was found, e.g. `app.tgz!/package/package-lock.json`. */
  readonly path: string;
}

const PURL_TYPES: Record<PackageEcosystem, string> = {
  npm: 'npm',
  pypi: 'pypi',
  go: 'golang',
  maven: 'maven',
  cargo: 'cargo',
  rubygems: 'gem',
  composer: 'composer',
};

/** The package URL (purl spec) of a package. */
export function purlOf(p: Pick<FoundPackage, 'ecosystem' | 'name' | 'version'>): string {
  const type = PURL_TYPES[p.ecosystem];
  const name = p.ecosystem === 'maven' ? p.name.replace(':', '/') : p.name;
  const encoded = name
    .split('/')
    .map((s) => encodeURIComponent(s).replace(/%40/g, '@'))
    .join('/');
  return `pkg:${type}/${encoded.startsWith('@') ? `%40${encoded.slice(1)}` : encoded}@${encodeURIComponent(p.version)}`;
}

/** Parses a purl into a package, or undefined for types the scanner does not know. */
export function fromPurl(purl: string, path: string): FoundPackage | undefined {
  const m = /^pkg:([a-z]+)\/(.+)@([^?#]+)/.exec(purl);
  if (m === null) return undefined;
  const [, type = '', rawName = '', rawVersion = ''] = m;
  const ecosystem = (Object.entries(PURL_TYPES).find(([, t]) => t === type)?.[0] ?? undefined) as
    | PackageEcosystem
    | undefined;
  if (ecosystem === undefined) return undefined;
  let name = decodeURIComponent(rawName);
  if (ecosystem === 'maven') name = name.replace('/', ':');
  return { ecosystem, name, version: decodeURIComponent(rawVersion), path };
}

function invalid(path: string, what: string, cause?: unknown): GatewayError {
  return new GatewayError('GW_ERR_ARTIFACTS_MANIFEST_INVALID', {
    message: `Cannot parse "${path}": ${what}`,
    details: { path },
    cause,
  });
}

function json(path: string, text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch (cause) {
    throw invalid(path, 'not a JSON object', cause);
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const obj = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

function pkg(
  ecosystem: PackageEcosystem,
  name: string | undefined,
  version: string | undefined,
  path: string,
) {
  return name === undefined || version === undefined ? [] : [{ ecosystem, name, version, path }];
}

function packageLock(path: string, text: string): FoundPackage[] {
  const doc = json(path, text);
  const out: FoundPackage[] = [];
  for (const [key, value] of Object.entries(obj(doc['packages']))) {
    if (key === '' || obj(value)['link'] === true) continue;
    const name =
      str(obj(value)['name']) ?? key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
    out.push(...pkg('npm', name, str(obj(value)['version']), path));
  }
  if (out.length > 0) return out;
  const walk = (deps: Record<string, unknown>) => {
    for (const [name, value] of Object.entries(deps)) {
      out.push(...pkg('npm', name, str(obj(value)['version']), path));
      walk(obj(obj(value)['dependencies']));
    }
  };
  walk(obj(doc['dependencies']));
  return out;
}

function yarnLock(path: string, text: string): FoundPackage[] {
  const out: FoundPackage[] = [];
  let names: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.startsWith('#') || line.trim() === '') continue;
    if (!line.startsWith(' ')) {
      // `"@scope/a@^1.0.0", a@npm:^1.2:` — the name is everything before the last `@` of a spec.
      names = line
        .replace(/:$/, '')
        .split(',')
        .map((s) => s.trim().replace(/^"|"$/g, ''))
        .map((spec) => spec.slice(0, spec.indexOf('@', 1)))
        .filter((n) => n !== '');
      continue;
    }
    const m = /^\s+version:?\s+"?([^"\s]+)"?/.exec(line);
    if (m?.[1] !== undefined && names.length > 0) {
      for (const name of new Set(names)) out.push({ ecosystem: 'npm', name, version: m[1], path });
      names = [];
    }
  }
  if (out.length === 0 && /\S/.test(text) && !text.includes('version'))
    throw invalid(path, 'no package entries');
  return out;
}

function pnpmLock(path: string, text: string): FoundPackage[] {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (cause) {
    throw invalid(path, 'not YAML', cause);
  }
  const out: FoundPackage[] = [];
  for (const key of Object.keys(obj(obj(doc)['packages']))) {
    // v5: `/name/1.2.3`, v6: `/name@1.2.3`, v9: `name@1.2.3(peer@x)`.
    const clean = key.replace(/^\//, '').replace(/\(.*$/, '');
    const at = clean.lastIndexOf('@');
    if (at > 0) out.push({ ecosystem: 'npm', name: clean.slice(0, at), version: clean.slice(at + 1), path });
    else {
      const slash = clean.lastIndexOf('/');
      if (slash > 0)
        out.push({ ecosystem: 'npm', name: clean.slice(0, slash), version: clean.slice(slash + 1), path });
    }
  }
  return out;
}

function requirementsTxt(path: string, text: string): FoundPackage[] {
  const out: FoundPackage[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/\s+#.*$/, '').trim();
    const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*===?\s*([A-Za-z0-9.!+_-]+)/.exec(line);
    if (m !== null) out.push({ ecosystem: 'pypi', name: m[1] ?? '', version: m[2] ?? '', path });
  }
  return out;
}

/** `[[package]]` tables with `name = "…"` and `version = "…"` (poetry.lock, Cargo.lock). */
function tomlPackages(ecosystem: PackageEcosystem, path: string, text: string): FoundPackage[] {
  const out: FoundPackage[] = [];
  for (const block of text.split(/^\[\[package\]\]\s*$/m).slice(1)) {
    const section = block.split(/^\[/m)[0] ?? '';
    const name = /^name\s*=\s*"([^"]+)"/m.exec(section)?.[1];
    const version = /^version\s*=\s*"([^"]+)"/m.exec(section)?.[1];
    if (name === undefined || version === undefined) throw invalid(path, 'a package without name or version');
    out.push({ ecosystem, name, version, path });
  }
  return out;
}

function pipfileLock(path: string, text: string): FoundPackage[] {
  const doc = json(path, text);
  const out: FoundPackage[] = [];
  for (const group of ['default', 'develop']) {
    for (const [name, value] of Object.entries(obj(doc[group]))) {
      const version = str(obj(value)['version'])?.replace(/^==/, '');
      out.push(...pkg('pypi', name, version, path));
    }
  }
  return out;
}

function goMod(path: string, text: string): FoundPackage[] {
  const out: FoundPackage[] = [];
  let inBlock = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/\/\/.*$/, '').trim();
    if (line.startsWith('require (')) inBlock = true;
    else if (inBlock && line === ')') inBlock = false;
    const m = (inBlock ? /^(\S+)\s+(v\S+)/ : /^require\s+(\S+)\s+(v\S+)/).exec(line);
    if (m !== null) out.push({ ecosystem: 'go', name: m[1] ?? '', version: m[2] ?? '', path });
  }
  return out;
}

function goSum(path: string, text: string): FoundPackage[] {
  const seen = new Map<string, FoundPackage>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^(\S+)\s+(v[^/\s]+?)(?:\/go\.mod)?\s+h1:/.exec(line.trim());
    if (m !== null)
      seen.set(`${m[1]}@${m[2]}`, { ecosystem: 'go', name: m[1] ?? '', version: m[2] ?? '', path });
  }
  return [...seen.values()];
}

function xmlTag(block: string, tag: string): string | undefined {
  return new RegExp(`<${tag}>\\s*([^<]+?)\\s*</${tag}>`).exec(block)?.[1];
}

function pomXml(path: string, text: string): FoundPackage[] {
  if (!/<project[\s>]/.test(text)) throw invalid(path, 'no <project> element');
  const out: FoundPackage[] = [];
  const body = text.replace(/<!--[\s\S]*?-->/g, '');
  const withoutDeps = body
    .replace(/<dependencies>[\s\S]*?<\/dependencies>/g, '')
    .replace(/<parent>[\s\S]*?<\/parent>/, '');
  const group =
    xmlTag(withoutDeps, 'groupId') ?? xmlTag(/<parent>[\s\S]*?<\/parent>/.exec(body)?.[0] ?? '', 'groupId');
  const artifact = xmlTag(withoutDeps, 'artifactId');
  const version = xmlTag(withoutDeps, 'version');
  if (group !== undefined && artifact !== undefined)
    out.push(...pkg('maven', `${group}:${artifact}`, version, path));
  for (const dep of body.match(/<dependency>[\s\S]*?<\/dependency>/g) ?? []) {
    const v = xmlTag(dep, 'version');
    // Property references (`${x.version}`) need the effective POM; they are skipped, not guessed.
    if (v === undefined || v.includes('${')) continue;
    out.push(...pkg('maven', `${xmlTag(dep, 'groupId') ?? ''}:${xmlTag(dep, 'artifactId') ?? ''}`, v, path));
  }
  return out;
}

function properties(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([^#!=:\s]+)\s*[=:]\s*(.*?)\s*$/.exec(line);
    if (m !== null) out[m[1] ?? ''] = m[2] ?? '';
  }
  return out;
}

function pomProperties(path: string, text: string): FoundPackage[] {
  const p = properties(text);
  if (p['groupId'] === undefined || p['artifactId'] === undefined)
    throw invalid(path, 'no groupId or artifactId');
  return pkg('maven', `${p['groupId']}:${p['artifactId']}`, p['version'], path);
}

function gemfileLock(path: string, text: string): FoundPackage[] {
  const out: FoundPackage[] = [];
  let inSpecs = false;
  for (const line of text.split(/\r?\n/)) {
    if (/^\s{2}specs:\s*$/.test(line)) inSpecs = true;
    else if (/^\S/.test(line)) inSpecs = false;
    const m = inSpecs ? /^\s{4}([A-Za-z0-9._-]+) \(([^)\s]+)\)\s*$/.exec(line) : null;
    if (m !== null) out.push({ ecosystem: 'rubygems', name: m[1] ?? '', version: m[2] ?? '', path });
  }
  return out;
}

function composerLock(path: string, text: string): FoundPackage[] {
  const doc = json(path, text);
  const list = [
    ...(Array.isArray(doc['packages']) ? doc['packages'] : []),
    ...(Array.isArray(doc['packages-dev']) ? doc['packages-dev'] : []),
  ];
  return list.flatMap((p) =>
    pkg('composer', str(obj(p)['name']), str(obj(p)['version'])?.replace(/^v/, ''), path),
  );
}

function packageJson(path: string, text: string): FoundPackage[] {
  const doc = json(path, text);
  return pkg('npm', str(doc['name']), str(doc['version']), path);
}

function wheelMetadata(path: string, text: string): FoundPackage[] {
  const name = /^Name:\s*(\S+)/m.exec(text)?.[1];
  const version = /^Version:\s*(\S+)/m.exec(text)?.[1];
  if (name === undefined || version === undefined) throw invalid(path, 'no Name or Version header');
  return pkg('pypi', name, version, path);
}

function cycloneDx(path: string, doc: Record<string, unknown>): FoundPackage[] {
  const out: FoundPackage[] = [];
  const walk = (components: unknown) => {
    if (!Array.isArray(components)) return;
    for (const c of components) {
      const purl = str(obj(c)['purl']);
      const found = purl === undefined ? undefined : fromPurl(purl, path);
      if (found !== undefined) out.push(found);
      walk(obj(c)['components']);
    }
  };
  walk(doc['components']);
  return out;
}

function spdx(path: string, doc: Record<string, unknown>): FoundPackage[] {
  const out: FoundPackage[] = [];
  for (const p of Array.isArray(doc['packages']) ? doc['packages'] : []) {
    for (const ref of Array.isArray(obj(p)['externalRefs']) ? (obj(p)['externalRefs'] as unknown[]) : []) {
      const locator = str(obj(ref)['referenceLocator']);
      if (obj(ref)['referenceType'] === 'purl' && locator !== undefined) {
        const found = fromPurl(locator, path);
        if (found !== undefined) out.push(found);
      }
    }
  }
  return out;
}

function sbom(path: string, text: string): FoundPackage[] {
  const doc = json(path, text);
  if (doc['bomFormat'] === 'CycloneDX') return cycloneDx(path, doc);
  if (typeof doc['spdxVersion'] === 'string') return spdx(path, doc);
  throw invalid(path, 'neither a CycloneDX nor an SPDX document');
}

type Parser = (path: string, text: string) => FoundPackage[];

/** Parsers by base name; `.cdx.json`, `.spdx.json` and `bom.json` are SBOMs. */
const BY_NAME: Record<string, Parser> = {
  'package-lock.json': packageLock,
  'npm-shrinkwrap.json': packageLock,
  'yarn.lock': yarnLock,
  'pnpm-lock.yaml': pnpmLock,
  'requirements.txt': requirementsTxt,
  'poetry.lock': (p, t) => tomlPackages('pypi', p, t),
  'Pipfile.lock': pipfileLock,
  'go.mod': goMod,
  'go.sum': goSum,
  'pom.xml': pomXml,
  'pom.properties': pomProperties,
  'Cargo.lock': (p, t) => tomlPackages('cargo', p, t),
  'Gemfile.lock': gemfileLock,
  'composer.lock': composerLock,
  'bom.json': sbom,
};

/** The parser for an archive path, or undefined when the file is not a known manifest. */
export function manifestParser(path: string): Parser | undefined {
  const base = path.slice(path.lastIndexOf('/') + 1);
  if (base.endsWith('.cdx.json') || base.endsWith('.spdx.json')) return sbom;
  // Only the package's own manifest: `package/package.json` of an npm tarball, not every
  // package.json of bundled dependencies (those are in the lockfile).
  if (base === 'package.json' && /(^|!\/)package\/package\.json$/.test(path)) return packageJson;
  if (base === 'METADATA' && path.endsWith('.dist-info/METADATA')) return wheelMetadata;
  if (base === 'PKG-INFO') return wheelMetadata;
  return BY_NAME[base];
}
