import { GatewayError } from '#core/errors';
import { normalizePypiName } from '#core/vulndb';

// npm's validate-npm-package-name rules: at most 214 characters, URL-safe characters only, no
// leading dot or underscore. Upper case is accepted because old packages still use it.
const NPM_PART = /^(?![._])[A-Za-z0-9._~-]{1,214}$/;

function invalid(ecosystem: string, name: string): GatewayError {
  return new GatewayError('GW_ERR_REGISTRY_NAME_INVALID', {
    message: `Invalid ${ecosystem} package name "${name.slice(0, 300)}"`,
    details: { ecosystem },
  });
}

/** Validates an npm name (`pkg` or `@scope/pkg`, `%2f` already decoded); throws GW_ERR_REGISTRY_NAME_INVALID. */
export function checkNpmName(name: string): string {
  if (name.length > 214) throw invalid('npm', name);
  const m = /^@([^/]+)\/([^/]+)$/.exec(name);
  const parts = m === null ? [name] : [m[1] as string, m[2] as string];
  // No real package needs `..`; refusing it anywhere keeps every name inert in paths and cache keys.
  for (const p of parts) if (!NPM_PART.test(p) || p.includes('..')) throw invalid('npm', name);
  return name;
}

/** The file-name base of a package's tarballs: `@scope/pkg` → `pkg`. */
/**
 * The entry of `record` under a name a request gave (a version, dist-tag or file): own
 * properties only, so a name like "constructor" or "__proto__" is one that is not there, never
 * something inherited from Object.
 */
export function entryNamed<T>(record: Readonly<Record<string, T>>, name: string): T | undefined {
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

export const npmBaseName = (name: string): string => name.slice(name.lastIndexOf('/') + 1);

// PEP 508 names: letters, digits, and . _ - inside, starting and ending with a letter or digit.
const PYPI_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,198}[A-Za-z0-9])?$/;

/** Validates a PyPI project name and returns its PEP 503 normalized form. */
export function checkPypiName(name: string): string {
  if (!PYPI_NAME.test(name)) throw invalid('PyPI', name);
  return normalizePypiName(name);
}

// Distribution file names: no separators, no traversal, a known extension.
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+!-]{0,254}$/;

/** Validates a distribution file name from a URL path. */
export function checkFileName(name: string): string {
  if (!FILE_NAME.test(name) || name.includes('..')) {
    throw new GatewayError('GW_ERR_REGISTRY_NAME_INVALID', {
      message: `Invalid file name "${name.slice(0, 300)}"`,
    });
  }
  return name;
}
