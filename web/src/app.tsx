import { CssBaseline, ThemeProvider } from '@mui/material';
import { useMemo, useState } from 'react';
import { Navigate, Route, Routes } from 'react-router';
import type { ApiClient } from './api/client.ts';
import { AuthProvider, useAuth } from './auth/auth-context.tsx';
import { RequireAuth, RequirePermission } from './auth/guards.tsx';
import { homeFor } from './layout/nav.ts';
import { Shell } from './layout/shell.tsx';
import { ArtifactDetailPage } from './pages/artifact-detail.tsx';
import { ArtifactsPage } from './pages/artifacts.tsx';
import { AuditPage } from './pages/audit.tsx';
import { EdgePage } from './pages/edge.tsx';
import { HealthPage } from './pages/health.tsx';
import { KeysPage } from './pages/keys.tsx';
import { LoginPage } from './pages/login.tsx';
import { NotFoundPage } from './pages/not-found.tsx';
import { RegistryPage } from './pages/registry.tsx';
import { RolesPage } from './pages/roles.tsx';
import { UploadPage } from './pages/upload.tsx';
import { UsersPage } from './pages/users.tsx';
import { buildTheme, initialMode, type Mode, saveMode } from './theme.ts';

function Home() {
  const { can } = useAuth();
  return <Navigate to={homeFor(can)} replace />;
}

function SignedInRoutes({ mode, onMode }: { mode: Mode; onMode: (m: Mode) => void }) {
  return (
    <RequireAuth>
      <Shell mode={mode} onMode={onMode}>
        <Routes>
          <Route index element={<Home />} />
          <Route
            path="artifacts"
            element={
              <RequirePermission anyOf={['artifacts:list']}>
                <ArtifactsPage />
              </RequirePermission>
            }
          />
          <Route
            path="artifacts/upload"
            element={
              <RequirePermission anyOf={['artifacts:upload']}>
                <UploadPage />
              </RequirePermission>
            }
          />
          <Route
            path="artifacts/:id"
            element={
              <RequirePermission anyOf={['artifacts:read']}>
                <ArtifactDetailPage />
              </RequirePermission>
            }
          />
          <Route
            path="registry"
            element={
              <RequirePermission anyOf={['registry:decisions:read', 'registry:policy:test']}>
                <RegistryPage />
              </RequirePermission>
            }
          />
          <Route
            path="audit"
            element={
              <RequirePermission anyOf={['audit:read']}>
                <AuditPage />
              </RequirePermission>
            }
          />
          <Route
            path="admin/users"
            element={
              <RequirePermission anyOf={['users:read']}>
                <UsersPage />
              </RequirePermission>
            }
          />
          <Route
            path="admin/keys"
            element={
              <RequirePermission anyOf={['keys:read']}>
                <KeysPage />
              </RequirePermission>
            }
          />
          <Route
            path="admin/roles"
            element={
              <RequirePermission anyOf={['bindings:write']}>
                <RolesPage />
              </RequirePermission>
            }
          />
          <Route
            path="edge"
            element={
              <RequirePermission anyOf={['edge:read']}>
                <EdgePage />
              </RequirePermission>
            }
          />
          <Route
            path="health"
            element={
              <RequirePermission anyOf={['health:read']}>
                <HealthPage />
              </RequirePermission>
            }
          />
          <Route path="*" element={<NotFoundPage />} />
        </Routes>
      </Shell>
    </RequireAuth>
  );
}

/** The console: theme, session and routes. The router is supplied by the caller (browser or memory). */
export function App({ client }: { client: ApiClient }) {
  const [mode, setMode] = useState<Mode>(initialMode);
  const theme = useMemo(() => buildTheme(mode), [mode]);
  const onMode = (m: Mode) => {
    saveMode(m);
    setMode(m);
  };
  return (
    <ThemeProvider theme={theme}>
      <CssBaseline enableColorScheme />
      <AuthProvider client={client}>
        <Routes>
          <Route path="/login" element={<LoginPage />} />
          <Route path="/*" element={<SignedInRoutes mode={mode} onMode={onMode} />} />
        </Routes>
      </AuthProvider>
    </ThemeProvider>
  );
}
