import { Alert, AlertTitle, Box, Button, CircularProgress } from '@mui/material';
import type { ReactNode } from 'react';
import { Link as RouterLink, Navigate, useLocation } from 'react-router';
import { ErrorAlert } from '../components/error-alert.tsx';
import { Page } from '../components/page.tsx';
import { useAuth } from './auth-context.tsx';
import type { Action } from './principal.ts';

/** Sends a signed-out visitor to the login page, remembering where they were. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const { state, retry, logout } = useAuth();
  const location = useLocation();
  if (state.status === 'loading')
    return (
      <Box sx={{ display: 'grid', placeItems: 'center', minHeight: '50vh' }}>
        <CircularProgress aria-label="Loading your session" />
      </Box>
    );
  if (state.status === 'unavailable')
    return (
      <Box component="main" sx={{ maxWidth: 720, mx: 'auto', p: 3 }}>
        <Page title="Cannot load your session">
          <ErrorAlert error={state.error} onRetry={retry} />
          <Button onClick={() => void logout()}>Sign out</Button>
        </Page>
      </Box>
    );
  if (state.status === 'signed-out') {
    const next = location.pathname + location.search;
    const params = new URLSearchParams({ next });
    if (state.expired) params.set('expired', '1');
    return <Navigate to={`/login?${params.toString()}`} replace />;
  }
  return children;
}

/** The page every guarded route shows to a principal without the permission. */
export function Forbidden({ action }: { action: string }) {
  return (
    <Page title="Not allowed">
      <Alert severity="warning" role="alert" data-testid="forbidden">
        <AlertTitle>You do not have access to this page</AlertTitle>
        It needs the permission <code>{action}</code>, which none of your roles carries. Ask an administrator
        for a role binding that grants it.
      </Alert>
      <Button component={RouterLink} to="/" sx={{ mt: 2 }}>
        Go to your start page
      </Button>
    </Page>
  );
}

/** Renders children only for principals that hold one of the actions. */
export function RequirePermission({ anyOf, children }: { anyOf: readonly Action[]; children: ReactNode }) {
  const { can } = useAuth();
  if (!anyOf.some(can)) return <Forbidden action={anyOf.join('" or "')} />;
  return children;
}
