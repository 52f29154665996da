/**
 * The `h1:` hash of golang.org/x/mod/sumdb/dirhash (Hash1): SHA-256 over a summary with one line
 * `<sha256 hex>  <file name>\n` per file, files sorted by name; `h1:` + base64 of that digest.
 * A module zip hashes every file under its `<module>@<version>/` names; a go.mod hashes as the
 * single file `go.mod`.
 */
import { createHash } from 'node:crypto';
import { readZip } from '#core/vulndb';

/** Go's limit for an unzipped module file (golang.org/x/mod/zip MaxZipFile). */
const MAX_FILE = 500 << 20;

function hash1(files: readonly { readonly name: string; readonly sha256: string }[]): string {
  const summary = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (f.name.includes('\n')) throw new SyntaxError(`File name "${f.name}" contains a newline`);
    summary.update(`${f.sha256}  ${f.name}\n`);
  }
  return `h1:${summary.digest('base64')}`;
}

/** The h1 hash of a go.mod file. */
export function hashGoMod(bytes: Buffer): string {
  return hash1([{ name: 'go.mod', sha256: createHash('sha256').update(bytes).digest('hex') }]);
}

/**
 * The h1 hash of a module zip on disk; also checks that every file lives under
 * `<module>@<version>/` (golang.org/x/mod/zip rules), so a zip of another module is refused.
 */
export async function hashModuleZip(file: string, prefix: string): Promise<string> {
  const files: { name: string; sha256: string }[] = [];
  for await (const { entry, data } of readZip(file, { maxEntryBytes: MAX_FILE })) {
    if (!entry.name.startsWith(prefix) || entry.name.includes('/../') || entry.name.includes('\\'))
      throw new SyntaxError(`Zip file "${entry.name.slice(0, 200)}" is outside "${prefix}"`);
    files.push({ name: entry.name, sha256: createHash('sha256').update(data).digest('hex') });
  }
  return hash1(files);
}
