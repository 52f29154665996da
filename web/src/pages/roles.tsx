import {
  Alert,
  Chip,
  Paper,
  Table,
  TableBody,
  TableCell,
  TableContainer,
  TableHead,
  TableRow,
} from '@mui/material';
import { ROLE_PERMISSIONS } from '@gatehouse/rbac';
import { ApiError } from '../api/problem.ts';
import { listOf } from '../api/types.ts';
import { useAuth } from '../auth/auth-context.tsx';
import { ErrorAlert } from '../components/error-alert.tsx';
import { Page } from '../components/page.tsx';
import { useApi } from '../lib/use-api.ts';

interface RoleView {
  readonly name: string;
  readonly actions: readonly string[];
  readonly description?: string;
}

/** The built-in table, for a server that does not list roles. */
export function builtinRoles(): RoleView[] {
  return Object.entries(ROLE_PERMISSIONS).map(([name, actions]) => ({ name, actions: [...actions] }));
}

export function normalizeRoles(raw: unknown): RoleView[] {
  return listOf<Record<string, unknown>>(raw, 'roles').flatMap((r) => {
    const name = r['name'] ?? r['role'];
    const actions = r['actions'] ?? r['permissions'];
    return typeof name === 'string'
      ? [
          {
            name,
            actions: Array.isArray(actions) ? actions.map(String) : [],
            ...(typeof r['description'] === 'string' ? { description: r['description'] } : {}),
          },
        ]
      : [];
  });
}

export function RolesPage() {
  const { client } = useAuth();
  const { data, error, loading, reload } = useApi(async (signal) => {
    try {
      return { roles: normalizeRoles(await client.get('/api/roles', undefined, signal)), builtin: false };
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return { roles: builtinRoles(), builtin: true };
      throw e;
    }
  }, 'roles');
  return (
    <Page title="Roles" loading={loading}>
      <ErrorAlert error={error} onRetry={reload} />
      {data?.builtin === true ? (
        <Alert severity="info" sx={{ mb: 2 }}>
          This server does not list roles; showing the built-in role table.
        </Alert>
      ) : null}
      <Alert severity="info" sx={{ mb: 2 }}>
        Bind roles to users on the Users page and to API keys when creating them; a binding is{' '}
        <code>role:namespace</code>, where the namespace is a repository, kv namespace or <code>*</code>.
      </Alert>
      <TableContainer component={Paper}>
        <Table size="small" aria-label="Roles">
          <TableHead>
            <TableRow>
              <TableCell>Role</TableCell>
              <TableCell>Permissions</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {data?.roles.map((r) => (
              <TableRow key={r.name}>
                <TableCell sx={{ verticalAlign: 'top' }}>{r.name}</TableCell>
                <TableCell>
                  {r.actions.map((a) => (
                    <Chip key={a} label={a} size="small" variant="outlined" sx={{ m: 0.25 }} />
                  ))}
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </TableContainer>
    </Page>
  );
}
