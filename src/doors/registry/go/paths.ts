/**
 * GOPROXY request paths (go.dev/ref/mod#goproxy-protocol): module paths and versions are
 * case-encoded in URLs (`!` + lower case letter for each upper case one, so that case-insensitive
 * file systems can hold them), and module paths follow golang.org/x/mod/module.CheckPath.
 */
import { GatewayError } from '#core/errors';
import { isCanonicalGoVersion } from '#core/vulndb';

/** What a GOPROXY request asks for. */
export type GoRequest =
  | { readonly kind: 'list' | 'latest'; readonly module: string; readonly escaped: string }
  | {
      readonly kind: 'info' | 'mod' | 'zip';
      readonly module: string;
      readonly escaped: string;
      readonly version: string;
    };

/** A request for one version's `.info`, `.mod` or `.zip`. */
export type GoFileRequest = Extract<GoRequest, { readonly version: string }>;

const MAX_PATH = 512;

function invalid(what: string, text: string, why: string): GatewayError {
  return new GatewayError('GW_ERR_REGISTRY_NAME_INVALID', {
    message: `Invalid Go ${what} "${text.slice(0, 300)}": ${why}`,
    details: { ecosystem: 'go' },
  });
}

/** Case-encodes a module path or version (`github.com/Azure` → `github.com/!azure`). */
export function escapeGoPath(text: string): string {
  return text.replace(/[A-Z]/g, (c) => `!${c.toLowerCase()}`);
}

/** Decodes a case-encoded path; undefined when it is not a valid encoding (upper case, bad `!`). */
export function unescapeGoPath(escaped: string): string | undefined {
  let out = '';
  for (let i = 0; i < escaped.length; i++) {
    const c = escaped[i] as string;
    if (c >= 'A' && c <= 'Z') return undefined;
    if (c !== '!') {
      out += c;
      continue;
    }
    const next = escaped[i + 1];
    if (next === undefined || next < 'a' || next > 'z') return undefined;
    out += next.toUpperCase();
    i++;
  }
  return out;
}

// module.CheckPath: ASCII letters, digits and -._~ in each element; the first element is a
// domain-like name (a dot, lower case, no leading dash); no empty, dot-only or dot-edged elements.
const ELEMENT = /^[A-Za-z0-9._~-]+$/;
const FIRST = /^[a-z0-9][a-z0-9.-]*\.[a-z0-9.-]*[a-z0-9]$/;

/** Validates a (decoded) module path; throws GW_ERR_REGISTRY_NAME_INVALID. */
export function checkModulePath(path: string): string {
  if (path.length === 0 || path.length > MAX_PATH) throw invalid('module path', path, 'bad length');
  const elements = path.split('/');
  if (!FIRST.test(elements[0] as string))
    throw invalid('module path', path, 'the first element must be a lower-case domain name');
  for (const e of elements) {
    if (!ELEMENT.test(e)) throw invalid('module path', path, `element "${e}" has invalid characters`);
    if (e.startsWith('.') || e.endsWith('.') || e.includes('..'))
      throw invalid('module path', path, `element "${e}" starts or ends with a dot`);
  }
  return path;
}

function moduleOf(escaped: string): string {
  const decoded = unescapeGoPath(escaped);
  if (decoded === undefined) throw invalid('module path', escaped, 'bad case encoding');
  return checkModulePath(decoded);
}

/** Parses the path after the `/go/` prefix; throws on malformed module paths and versions. */
export function parseGoRequest(path: string): GoRequest | undefined {
  if (path.endsWith('/@latest')) {
    const escaped = path.slice(0, -'/@latest'.length);
    return { kind: 'latest', module: moduleOf(escaped), escaped };
  }
  const at = path.lastIndexOf('/@v/');
  if (at < 0) return undefined;
  const escaped = path.slice(0, at);
  const file = path.slice(at + 4);
  if (file === 'list') return { kind: 'list', module: moduleOf(escaped), escaped };
  const m = /^(.+)\.(info|mod|zip)$/.exec(file);
  if (m === null) return undefined;
  const module = moduleOf(escaped);
  const version = unescapeGoPath(m[1] as string);
  if (version === undefined || !isCanonicalGoVersion(version))
    throw invalid('version', m[1] as string, 'not a canonical module version');
  return { kind: m[2] as 'info' | 'mod' | 'zip', module, escaped, version };
}
