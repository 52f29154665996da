import {
  Alert,
  Box,
  Button,
  Card,
  CardContent,
  FormControl,
  InputLabel,
  MenuItem,
  Select,
  Stack,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  TextField,
  Typography,
} from '@mui/material';
import { type FormEvent, type ReactNode, useState } from 'react';
import { ApiError } from '../api/problem.ts';
import { listOf } from '../api/types.ts';
import { useAuth } from '../auth/auth-context.tsx';
import { ErrorAlert } from '../components/error-alert.tsx';
import { Page } from '../components/page.tsx';
import { useDraft } from '../lib/drafts.ts';
import { useApi } from '../lib/use-api.ts';
import { useSubmit } from '../lib/use-submit.ts';

interface EdgeRoute {
  readonly id: string;
  readonly listener: string;
  readonly host: string;
  readonly mode: string;
  readonly backend: string;
  readonly backendProtocol?: string;
}

interface EdgePolicy {
  readonly id: string;
  readonly route: string;
  readonly kind: string;
  readonly header?: string;
  readonly value?: string;
}

function Choice({
  label,
  value,
  options,
  onChange,
}: {
  label: string;
  value: string;
  options: readonly string[];
  onChange: (v: string) => void;
}) {
  const id = `edge-${label.replace(/\W/g, '-').toLowerCase()}`;
  return (
    <FormControl size="small" sx={{ minWidth: 130 }}>
      <InputLabel id={id}>{label}</InputLabel>
      <Select labelId={id} label={label} value={value} onChange={(e) => onChange(e.target.value)}>
        {options.map((o) => (
          <MenuItem key={o} value={o}>
            {o}
          </MenuItem>
        ))}
      </Select>
    </FormControl>
  );
}

function AddForm({
  label,
  onSubmit,
  children,
}: {
  label: string;
  onSubmit: () => Promise<void>;
  children: ReactNode;
}) {
  const { busy, error, run } = useSubmit();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(onSubmit);
  };
  return (
    <Box
      component="form"
      onSubmit={submit}
      aria-label={label}
      aria-busy={busy}
      sx={{ display: 'flex', flexWrap: 'wrap', gap: 2, mt: 2 }}
    >
      {children}
      <Button type="submit" variant="contained" loading={busy} sx={{ alignSelf: 'flex-start' }}>
        Add
      </Button>
      <Box sx={{ flexBasis: '100%' }}>
        <ErrorAlert error={error} />
      </Box>
    </Box>
  );
}

/** Renders small text fields bound to the keys of one draft (every field of the edge forms). */
function draftText<D extends Record<string, string>>(draft: D, update: (patch: Partial<D>) => void) {
  return (label: string, key: keyof D & string, extra: { required?: boolean; helperText?: string } = {}) => (
    <TextField
      size="small"
      label={label}
      value={draft[key]}
      onChange={(e) => update({ [key]: e.target.value } as Partial<D>)}
      required={extra.required ?? true}
      {...(extra.helperText === undefined ? {} : { helperText: extra.helperText })}
    />
  );
}

/**
 * The body `POST /api/edge/routes` accepts: an L4 route carries only its coordinates; an L7 route
 * adds its backend protocol and the certificate and key files the gateway terminates TLS with.
 */
export function routeBody(route: Readonly<Record<string, string>>): Record<string, string> {
  const base = {
    id: route['id'] ?? '',
    listener: route['listener'] ?? '',
    host: route['host'] ?? '',
    mode: route['mode'] ?? 'l4',
    backend: route['backend'] ?? '',
  };
  if (base.mode !== 'l7') return base;
  const optional = (key: string) =>
    route[key] === undefined || route[key] === '' ? {} : { [key]: route[key] ?? '' };
  return {
    ...base,
    backendProtocol: route['backendProtocol'] ?? 'http1',
    ...optional('certFile'),
    ...optional('keyFile'),
    ...optional('backendCaFile'),
  };
}

export function EdgePage() {
  const { client, can } = useAuth();
  const writable = can('edge:write');
  const removing = useSubmit();
  const [removed, setRemoved] = useState<string | undefined>(undefined);
  const { data, error, loading, reload } = useApi(async (signal) => {
    try {
      const [routes, policies] = await Promise.all([
        client.get('/api/edge/routes', undefined, signal),
        client.get('/api/edge/policies', undefined, signal),
      ]);
      return {
        enabled: true,
        routes: listOf<EdgeRoute>(routes, 'routes'),
        policies: listOf<EdgePolicy>(policies, 'policies'),
      };
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && !e.code.startsWith('GW_ERR_EDGE'))
        return { enabled: false, routes: [], policies: [] };
      throw e;
    }
  }, 'edge');
  const [route, updateRoute, clearRoute] = useDraft('edge.route', {
    id: '',
    listener: 'default',
    host: '',
    mode: 'l4',
    backend: '',
    backendProtocol: 'http1',
    certFile: '',
    keyFile: '',
    backendCaFile: '',
  });
  const [policy, updatePolicy, clearPolicy] = useDraft('edge.policy', {
    id: '',
    route: '',
    kind: 'block-user-agent',
    header: '',
    value: '',
  });
  const routeText = draftText(route, updateRoute);
  const policyText = draftText(policy, updatePolicy);
  // One removal at a time: the button clicked shows progress, the others wait with it.
  const removeButton = (path: string, kind: string, id: string) => (
    <Button
      size="small"
      color="error"
      aria-label={`Remove ${kind} ${id}`}
      loading={removing.busy && removed === path}
      disabled={removing.busy}
      onClick={() => {
        if (!window.confirm(`Remove ${kind} "${id}"? Traffic is affected at once.`)) return;
        setRemoved(path);
        void removing.run(async () => {
          await client.request('DELETE', path);
          reload();
        });
      }}
    >
      Remove
    </Button>
  );
  if (data?.enabled === false)
    return (
      <Page title="Edge routes">
        <Alert severity="info">
          The edge door is not enabled on this gateway. Enable it under <code>edge</code> in gatehouse.yaml to
          manage SNI routes here.
        </Alert>
      </Page>
    );
  return (
    <Page title="Edge routes" loading={loading}>
      <ErrorAlert error={error} onRetry={reload} />
      <ErrorAlert error={removing.error} />
      <Stack spacing={2}>
        <Card>
          <CardContent>
            <Typography variant="h6" component="h2">
              Routes
            </Typography>
            <Box sx={{ overflowX: 'auto' }}>
              <Table size="small" aria-label="Edge routes">
                <TableHead>
                  <TableRow>
                    {['Id', 'Listener', 'Host (SNI)', 'Mode', 'Backend', ''].map((h) => (
                      <TableCell key={h}>{h}</TableCell>
                    ))}
                  </TableRow>
                </TableHead>
                <TableBody>
                  {data?.routes.map((r) => (
                    <TableRow key={r.id}>
                      <TableCell>{r.id}</TableCell>
                      <TableCell>{r.listener}</TableCell>
                      <TableCell>{r.host}</TableCell>
                      <TableCell>{r.mode}</TableCell>
                      <TableCell>{`${r.backend}${r.mode === 'l7' && r.backendProtocol !== undefined ? ` (${r.backendProtocol})` : ''}`}</TableCell>
                      <TableCell>
                        {writable
                          ? removeButton(`/api/edge/routes/${encodeURIComponent(r.id)}`, 'route', r.id)
                          : null}
                      </TableCell>
                    </TableRow>
                  ))}
                </TableBody>
              </Table>
            </Box>
            {writable ? (
              <AddForm
                label="Add route"
                onSubmit={async () => {
                  await client.request('POST', '/api/edge/routes', { body: routeBody(route) });
                  clearRoute();
                  reload();
                }}
              >
                {routeText('Id', 'id')}
                {routeText('Listener', 'listener')}
                {routeText('Host (SNI)', 'host')}
                <Choice
                  label="Mode"
                  value={route.mode}
                  options={['l4', 'l7']}
                  onChange={(v) => updateRoute({ mode: v })}
                />
                {routeText('Backend host:port', 'backend')}
                {route.mode === 'l7' ? (
                  <>
                    <Choice
                      label="Backend protocol"
                      value={route.backendProtocol}
                      options={['http1', 'h2c', 'h2', 'https']}
                      onChange={(v) => updateRoute({ backendProtocol: v })}
                    />
                    {routeText('Certificate file', 'certFile', {
                      helperText: 'PEM chain on the gateway host',
                    })}
                    {routeText('Key file', 'keyFile', { helperText: 'PEM private key on the gateway host' })}
                    {route.backendProtocol === 'https' || route.backendProtocol === 'h2'
                      ? routeText('Backend CA file', 'backendCaFile', {
                          required: false,
                          helperText: 'Optional: PEM CA trusted for the backend',
                        })
                      : null}
                  </>
                ) : null}
              </AddForm>
            ) : null}
          </CardContent>
        </Card>
        <Card>
          <CardContent>
            <Typography variant="h6" component="h2">
              L7 policies
            </Typography>
            <Table size="small" aria-label="L7 policies">
              <TableHead>
                <TableRow>
                  {['Id', 'Route', 'Kind', 'Header', 'Value', ''].map((h) => (
                    <TableCell key={h}>{h}</TableCell>
                  ))}
                </TableRow>
              </TableHead>
              <TableBody>
                {data?.policies.map((p) => (
                  <TableRow key={p.id}>
                    <TableCell>{p.id}</TableCell>
                    <TableCell>{p.route}</TableCell>
                    <TableCell>{p.kind}</TableCell>
                    <TableCell>{p.header ?? ''}</TableCell>
                    <TableCell>{p.value ?? ''}</TableCell>
                    <TableCell>
                      {writable
                        ? removeButton(`/api/edge/policies/${encodeURIComponent(p.id)}`, 'policy', p.id)
                        : null}
                    </TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
            {writable ? (
              <AddForm
                label="Add policy"
                onSubmit={async () => {
                  await client.request('POST', '/api/edge/policies', {
                    body: {
                      id: policy.id,
                      route: policy.route,
                      kind: policy.kind,
                      ...(policy.kind === 'require-header' ? { header: policy.header } : {}),
                      ...(policy.value === '' ? {} : { value: policy.value }),
                    },
                  });
                  clearPolicy();
                  reload();
                }}
              >
                {policyText('Policy id', 'id')}
                {policyText('Route id', 'route')}
                <Choice
                  label="Kind"
                  value={policy.kind}
                  options={['block-user-agent', 'require-header']}
                  onChange={(v) => updatePolicy({ kind: v })}
                />
                {policy.kind === 'require-header' ? policyText('Header', 'header') : null}
                {policyText(
                  policy.kind === 'block-user-agent' ? 'User-Agent contains' : 'Exact value (optional)',
                  'value',
                  { required: policy.kind === 'block-user-agent' },
                )}
              </AddForm>
            ) : null}
          </CardContent>
        </Card>
      </Stack>
    </Page>
  );
}
