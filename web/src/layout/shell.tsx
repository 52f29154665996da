import {
  AppBar,
  Box,
  Button,
  Chip,
  Drawer,
  IconButton,
  List,
  ListItemButton,
  ListItemText,
  SvgIcon,
  Toolbar,
  Tooltip,
  Typography,
  useMediaQuery,
} from '@mui/material';
import { useTheme } from '@mui/material/styles';
import { type ReactNode, useState } from 'react';
import { NavLink, useLocation } from 'react-router';
import { useAuth } from '../auth/auth-context.tsx';
import { rolesOf } from '../auth/principal.ts';
import type { Mode } from '../theme.ts';
import { NAV } from './nav.ts';

const DRAWER_WIDTH = 210;

function MenuIcon() {
  return (
    <SvgIcon aria-hidden="true">
      <path d="M3 18h18v-2H3v2zm0-5h18v-2H3v2zm0-7v2h18V6H3z" />
    </SvgIcon>
  );
}

function Navigation({ onNavigate }: { onNavigate?: () => void }) {
  const { can } = useAuth();
  const location = useLocation();
  return (
    <nav aria-label="Main">
      <List>
        {NAV.filter((item) => item.anyOf.some(can)).map((item) => (
          <ListItemButton
            key={item.to}
            component={NavLink}
            to={item.to}
            selected={location.pathname.startsWith(item.to)}
            {...(onNavigate === undefined ? {} : { onClick: onNavigate })}
          >
            <ListItemText primary={item.label} />
          </ListItemButton>
        ))}
      </List>
    </nav>
  );
}

/** The frame of every signed-in page: app bar, role-aware navigation, theme switch, sign-out. */
export function Shell({
  mode,
  onMode,
  children,
}: {
  mode: Mode;
  onMode: (m: Mode) => void;
  children: ReactNode;
}) {
  const theme = useTheme();
  const wide = useMediaQuery(theme.breakpoints.up('md'));
  const [open, setOpen] = useState(false);
  const { me, logout } = useAuth();
  return (
    <Box sx={{ display: 'flex', minHeight: '100vh' }}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <AppBar position="fixed" sx={{ zIndex: (t) => t.zIndex.drawer + 1 }}>
        <Toolbar sx={{ gap: 1 }}>
          {wide ? null : (
            <IconButton
              color="inherit"
              edge="start"
              aria-label="Open navigation"
              onClick={() => setOpen(true)}
            >
              <MenuIcon />
            </IconButton>
          )}
          <Typography variant="h6" component="span" sx={{ flexGrow: 1 }}>
            Gatehouse
          </Typography>
          <Tooltip title={`Switch to ${mode === 'dark' ? 'light' : 'dark'} theme`}>
            <Button
              color="inherit"
              onClick={() => onMode(mode === 'dark' ? 'light' : 'dark')}
              aria-pressed={mode === 'dark'}
            >
              {mode === 'dark' ? 'Dark' : 'Light'}
            </Button>
          </Tooltip>
          {me === undefined ? null : (
            <Box
              sx={{ display: { xs: 'none', sm: 'flex' }, alignItems: 'center', gap: 1 }}
              data-testid="whoami"
            >
              <Typography variant="body2">{me.name}</Typography>
              {rolesOf(me).map((r) => (
                <Chip key={r} label={r} size="small" color="default" sx={{ bgcolor: 'background.paper' }} />
              ))}
            </Box>
          )}
          <Button color="inherit" onClick={() => void logout()}>
            Sign out
          </Button>
        </Toolbar>
      </AppBar>
      <Drawer
        variant={wide ? 'permanent' : 'temporary'}
        open={wide || open}
        onClose={() => setOpen(false)}
        sx={{ width: DRAWER_WIDTH, flexShrink: 0, '& .MuiDrawer-paper': { width: DRAWER_WIDTH } }}
      >
        <Toolbar />
        <Navigation {...(wide ? {} : { onNavigate: () => setOpen(false) })} />
      </Drawer>
      <Box component="main" id="main" tabIndex={-1} sx={{ flexGrow: 1, p: { xs: 1.5, sm: 3 }, minWidth: 0 }}>
        <Toolbar />
        {children}
      </Box>
    </Box>
  );
}
