/** Splits `name@version`, keeping a leading `@` of an npm scope in the name. */
export function parsePackageSpec(spec: string): { name: string; version: string } | undefined {
  const s = spec.trim();
  const at = s.lastIndexOf('@');
  if (at <= 0) return undefined;
  const name = s.slice(0, at).trim();
  const version = s.slice(at + 1).trim();
  if (name === '' || version === '' || /\s/.test(name) || /\s/.test(version)) return undefined;
  return { name, version };
}
