import {
  Box,
  Button,
  Card,
  CardContent,
  Paper,
  Table,
  TableBody,
  TableCell,
  TableContainer,
  TableHead,
  TableRow,
  TextField,
  Typography,
} from '@mui/material';
import { type FormEvent, useState } from 'react';
import { listOf } from '../api/types.ts';
import { useAuth } from '../auth/auth-context.tsx';
import type { Binding } from '../auth/principal.ts';
import {
  BindingsField,
  bindingsValid,
  bindingText,
  parseBindingText,
} from '../components/bindings-field.tsx';
import { ErrorAlert } from '../components/error-alert.tsx';
import { Page } from '../components/page.tsx';
import { useDraft } from '../lib/drafts.ts';
import { formatTime } from '../lib/format.ts';
import { useApi } from '../lib/use-api.ts';
import { useSubmit } from '../lib/use-submit.ts';

interface User {
  readonly id: string;
  readonly username: string;
  readonly roles?: Binding[];
  readonly disabled?: boolean;
  readonly createdAt?: string;
}

function CreateUser({ onCreated }: { onCreated: () => void }) {
  const { client } = useAuth();
  // The password is never part of the stored draft.
  const [draft, update, clear] = useDraft('users.create', { username: '', bindings: 'consumer:*' });
  const [password, setPassword] = useState('');
  const { busy, error, run } = useSubmit();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      await client.request('POST', '/api/users', {
        body: { username: draft.username, password, roles: parseBindingText(draft.bindings).bindings },
      });
      clear();
      setPassword('');
      onCreated();
    });
  };
  return (
    <Box
      component="form"
      onSubmit={submit}
      aria-label="Create user"
      aria-busy={busy}
      sx={{ display: 'flex', flexWrap: 'wrap', gap: 2 }}
    >
      <TextField
        size="small"
        label="Username"
        value={draft.username}
        onChange={(e) => update({ username: e.target.value })}
        required
        autoComplete="off"
      />
      <TextField
        size="small"
        label="Password"
        type="password"
        value={password}
        onChange={(e) => setPassword(e.target.value)}
        required
        autoComplete="new-password"
        helperText="At least 12 characters"
      />
      <BindingsField value={draft.bindings} onChange={(v) => update({ bindings: v })} />
      <Button
        type="submit"
        variant="contained"
        loading={busy}
        disabled={!bindingsValid(draft.bindings)}
        sx={{ alignSelf: 'flex-start' }}
      >
        Create user
      </Button>
      <Box sx={{ flexBasis: '100%' }}>
        <ErrorAlert error={error} />
      </Box>
    </Box>
  );
}

function UserRow({ user, onChange }: { user: User; onChange: () => void }) {
  const { client, can, me } = useAuth();
  const [bindings, setBindings] = useState(bindingText(user.roles));
  // Saving and deleting share one request at a time: a double click sends one.
  const { busy, error, run } = useSubmit();
  const [pending, setPending] = useState<'save' | 'delete' | undefined>(undefined);
  const act = (what: 'save' | 'delete', fn: () => Promise<unknown>) => {
    setPending(what);
    void run(async () => {
      await fn();
      onChange();
    });
  };
  const writable = can('users:write');
  return (
    <TableRow>
      <TableCell>{user.username}</TableCell>
      <TableCell sx={{ minWidth: 260 }}>
        {writable ? (
          <BindingsField label={`Bindings of ${user.username}`} value={bindings} onChange={setBindings} />
        ) : (
          bindingText(user.roles)
        )}
        <ErrorAlert error={error} />
      </TableCell>
      <TableCell>{user.disabled === true ? 'disabled' : 'active'}</TableCell>
      <TableCell>{formatTime(user.createdAt)}</TableCell>
      <TableCell>
        {writable ? (
          <Box sx={{ display: 'flex', gap: 1, flexWrap: 'wrap' }}>
            <Button
              size="small"
              aria-label={`Save roles of ${user.username}`}
              loading={busy && pending === 'save'}
              disabled={busy || !bindingsValid(bindings)}
              onClick={() =>
                act('save', () =>
                  client.request('PATCH', `/api/users/${user.id}`, {
                    body: { roles: parseBindingText(bindings).bindings },
                  }),
                )
              }
            >
              Save roles
            </Button>
            <Button
              size="small"
              color="error"
              aria-label={`Delete user ${user.username}`}
              loading={busy && pending === 'delete'}
              disabled={busy || `user:${user.id}` === me?.id || user.username === me?.name}
              onClick={() => {
                if (window.confirm(`Delete user "${user.username}"? Their sessions end at once.`))
                  act('delete', () => client.request('DELETE', `/api/users/${user.id}`));
              }}
            >
              Delete
            </Button>
          </Box>
        ) : null}
      </TableCell>
    </TableRow>
  );
}

export function UsersPage() {
  const { client, can } = useAuth();
  const { data, error, loading, reload } = useApi(
    async (signal) => listOf<User>(await client.get('/api/users', undefined, signal), 'users'),
    'users',
  );
  return (
    <Page title="Users" loading={loading}>
      {can('users:write') ? (
        <Card sx={{ mb: 2 }}>
          <CardContent>
            <Typography variant="h6" component="h2" gutterBottom>
              New user
            </Typography>
            <CreateUser onCreated={reload} />
          </CardContent>
        </Card>
      ) : null}
      <ErrorAlert error={error} onRetry={reload} />
      <TableContainer component={Paper}>
        <Table size="small" aria-label="Users">
          <TableHead>
            <TableRow>
              <TableCell>Username</TableCell>
              <TableCell>Role bindings</TableCell>
              <TableCell>State</TableCell>
              <TableCell>Created</TableCell>
              <TableCell>Actions</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {data?.map((u) => (
              <UserRow key={u.id} user={u} onChange={reload} />
            ))}
          </TableBody>
        </Table>
      </TableContainer>
    </Page>
  );
}
