import {
  Alert,
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

interface ApiKey {
  readonly id: string;
  readonly name: string;
  readonly bindings?: Binding[];
  readonly expiresAt?: string | null;
  readonly lastUsedAt?: string | null;
  readonly createdAt?: string;
  readonly allowedCidrs?: string[];
}

/**
 * `90` days from now as `{ expiresAt }`; empty is `{}` (never expires). Anything else (`abc`, `-5`,
 * `1e9`) is undefined: a key must not silently become one that never expires.
 */
export function expiresAtOf(days: string, now = Date.now()): { readonly expiresAt?: string } | undefined {
  if (days.trim() === '') return {};
  const n = Number(days);
  const at = new Date(now + n * 86_400_000);
  return !Number.isFinite(n) || n <= 0 || Number.isNaN(at.getTime())
    ? undefined
    : { expiresAt: at.toISOString() };
}

function CreateKey({ onCreated }: { onCreated: (secret: string | undefined) => void }) {
  const { client } = useAuth();
  const [draft, update, clear] = useDraft('keys.create', {
    name: '',
    bindings: 'consumer:*',
    expiresInDays: '90',
    allowedCidrs: '',
  });
  const { busy, error, run } = useSubmit();
  const expiry = expiresAtOf(draft.expiresInDays);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      // Counted from the moment of sending, not of the last key stroke.
      const expiresAt = expiresAtOf(draft.expiresInDays);
      if (expiresAt === undefined) return;
      const cidrs = draft.allowedCidrs.split(/[,\s]+/).filter((c) => c !== '');
      const created = await client.request<{ secret?: string }>('POST', '/api/keys', {
        body: {
          name: draft.name,
          bindings: parseBindingText(draft.bindings).bindings,
          ...expiresAt,
          ...(cidrs.length === 0 ? {} : { allowedCidrs: cidrs }),
        },
      });
      clear();
      onCreated(created.secret);
    });
  };
  return (
    <Box
      component="form"
      onSubmit={submit}
      aria-label="Create API key"
      aria-busy={busy}
      sx={{ display: 'flex', flexWrap: 'wrap', gap: 2 }}
    >
      <TextField
        size="small"
        label="Name"
        value={draft.name}
        onChange={(e) => update({ name: e.target.value })}
        required
      />
      <BindingsField value={draft.bindings} onChange={(v) => update({ bindings: v })} />
      <TextField
        size="small"
        label="Expires in (days)"
        value={draft.expiresInDays}
        onChange={(e) => update({ expiresInDays: e.target.value })}
        error={expiry === undefined}
        helperText={
          expiry === undefined ? 'A positive number of days, or empty for never' : 'Empty for never'
        }
      />
      <TextField
        size="small"
        label="Allowed networks"
        value={draft.allowedCidrs}
        onChange={(e) => update({ allowedCidrs: e.target.value })}
        helperText="CIDRs, comma separated; empty for any"
      />
      <Button
        type="submit"
        variant="contained"
        loading={busy}
        disabled={!bindingsValid(draft.bindings) || expiry === undefined}
        sx={{ alignSelf: 'flex-start' }}
      >
        Create key
      </Button>
      <Box sx={{ flexBasis: '100%' }}>
        <ErrorAlert error={error} />
      </Box>
    </Box>
  );
}

export function KeysPage() {
  const { client, can } = useAuth();
  const [secret, setSecret] = useState<string | undefined>(undefined);
  const revoking = useSubmit();
  const [revoked, setRevoked] = useState<string | undefined>(undefined);
  const { data, error, loading, reload } = useApi(
    async (signal) => listOf<ApiKey>(await client.get('/api/keys', undefined, signal), 'keys'),
    'keys',
  );
  const revoke = (key: ApiKey) => {
    if (!window.confirm(`Revoke API key "${key.name}"? Clients using it are refused at once.`)) return;
    setRevoked(key.id);
    void revoking.run(async () => {
      await client.request('DELETE', `/api/keys/${key.id}`);
      reload();
    });
  };
  return (
    <Page title="API keys" loading={loading}>
      {can('keys:write') ? (
        <Card sx={{ mb: 2 }}>
          <CardContent>
            <Typography variant="h6" component="h2" gutterBottom>
              New API key
            </Typography>
            <CreateKey
              onCreated={(s) => {
                setSecret(s);
                reload();
              }}
            />
          </CardContent>
        </Card>
      ) : null}
      {secret === undefined ? null : (
        <Alert severity="success" sx={{ mb: 2 }} onClose={() => setSecret(undefined)}>
          Copy the key now; it is shown only once: <code data-testid="new-key">{secret}</code>
        </Alert>
      )}
      <ErrorAlert error={error} onRetry={reload} />
      <ErrorAlert error={revoking.error} />
      <TableContainer component={Paper}>
        <Table size="small" aria-label="API keys">
          <TableHead>
            <TableRow>
              <TableCell>Name</TableCell>
              <TableCell>Id</TableCell>
              <TableCell>Role bindings</TableCell>
              <TableCell>Expires</TableCell>
              <TableCell>Last used</TableCell>
              <TableCell>Actions</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
            {data?.map((k) => (
              <TableRow key={k.id}>
                <TableCell>{k.name}</TableCell>
                <TableCell>
                  <code>{k.id}</code>
                </TableCell>
                <TableCell>{bindingText(k.bindings)}</TableCell>
                <TableCell>
                  {k.expiresAt === null || k.expiresAt === undefined ? 'never' : formatTime(k.expiresAt)}
                </TableCell>
                <TableCell>{formatTime(k.lastUsedAt)}</TableCell>
                <TableCell>
                  {can('keys:write') ? (
                    <Button
                      size="small"
                      color="error"
                      aria-label={`Revoke API key ${k.name}`}
                      loading={revoking.busy && revoked === k.id}
                      disabled={revoking.busy}
                      onClick={() => revoke(k)}
                    >
                      Revoke
                    </Button>
                  ) : null}
                </TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </TableContainer>
    </Page>
  );
}
