import { TextField } from '@mui/material';
import { type Binding, parseBindings } from '../auth/principal.ts';

/** `admin:*, publisher:team-a` ↔ bindings. Unknown roles are dropped (and shown as an error). */
export function parseBindingText(text: string): { bindings: Binding[]; unknown: string[] } {
  const parts = text
    .split(/[,\s]+/)
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const bindings = parseBindings(parts);
  const known = new Set(bindings.map((b) => `${b.role}:${b.namespace}`));
  const unknown = parts.filter((p) => !known.has(p.includes(':') ? p : `${p}:*`));
  return { bindings, unknown };
}

/**
 * True when every entry names a known role. A form must not send otherwise: the unknown entries
 * would be dropped, and a typo would create a principal without the role meant (or strip one).
 */
export function bindingsValid(text: string): boolean {
  return parseBindingText(text).unknown.length === 0;
}

export function bindingText(bindings: readonly Binding[] | undefined): string {
  return (bindings ?? []).map((b) => `${b.role}:${b.namespace}`).join(', ');
}

export function BindingsField({
  value,
  onChange,
  label = 'Role bindings',
}: {
  value: string;
  onChange: (v: string) => void;
  label?: string;
}) {
  const { unknown } = parseBindingText(value);
  return (
    <TextField
      size="small"
      label={label}
      value={value}
      onChange={(e) => onChange(e.target.value)}
      error={unknown.length > 0}
      helperText={
        unknown.length > 0
          ? `Unknown role: ${unknown.join(', ')}`
          : 'role:namespace, e.g. publisher:team-a, consumer:*'
      }
      sx={{ minWidth: 260, flexGrow: 1 }}
    />
  );
}
