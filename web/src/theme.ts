import { createTheme, type Theme } from '@mui/material/styles';

export type Mode = 'light' | 'dark';

// Palette colours picked for at least 4.5:1 contrast against their backgrounds (WCAG 2.2 1.4.3).
export function buildTheme(mode: Mode): Theme {
  return createTheme({
    palette:
      mode === 'light'
        ? {
            mode,
            primary: { main: '#1f4e79' },
            secondary: { main: '#6a1b9a' },
            error: { main: '#b3261e' },
            success: { main: '#1b6e2d' },
            warning: { main: '#8a5300' },
            background: { default: '#f6f7f9', paper: '#ffffff' },
          }
        : {
            mode,
            primary: { main: '#9ccaff' },
            secondary: { main: '#e1b6ff' },
            error: { main: '#ffb4ab' },
            success: { main: '#8fd99a' },
            warning: { main: '#ffcf8a' },
            background: { default: '#111418', paper: '#1b1f24' },
          },
    shape: { borderRadius: 8 },
    typography: { fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif' },
    components: {
      MuiButtonBase: { defaultProps: { disableRipple: false } },
      MuiTableCell: { styleOverrides: { root: { paddingTop: 8, paddingBottom: 8 } } },
    },
  });
}

const KEY = 'gatehouse.theme';

/** The saved choice, else the system's preference. */
export function initialMode(): Mode {
  const saved = globalThis.localStorage?.getItem(KEY);
  if (saved === 'light' || saved === 'dark') return saved;
  return globalThis.matchMedia?.('(prefers-color-scheme: dark)').matches === true ? 'dark' : 'light';
}

export function saveMode(mode: Mode): void {
  globalThis.localStorage?.setItem(KEY, mode);
}
