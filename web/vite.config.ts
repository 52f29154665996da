import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import type { Plugin } from 'vite';
import { defineConfig } from 'vitest/config';
import { CLIENT_ROUTES } from './src/client-routes.ts';

// The gateway replaces this placeholder with a fresh nonce in every index.html response, so the
// Content-Security-Policy can allow exactly the styles Emotion injects and nothing inline else.
export const CSP_NONCE_PLACEHOLDER = 'GATEHOUSE_CSP_NONCE';

const rbac = fileURLToPath(new URL('../src/core/rbac/permissions.ts', import.meta.url));

/** Writes the client routes next to index.html for the gateway's SPA fallback. */
function clientRoutes(): Plugin {
  return {
    name: 'gatehouse-client-routes',
    apply: 'build',
    generateBundle() {
      this.emitFile({
        type: 'asset',
        fileName: 'client-routes.json',
        source: `${JSON.stringify(CLIENT_ROUTES)}\n`,
      });
    },
  };
}

export default defineConfig({
  plugins: [react(), clientRoutes()],
  resolve: { alias: { '@gatehouse/rbac': rbac } },
  html: { cspNonce: CSP_NONCE_PLACEHOLDER },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Hashed names under assets/ are what the gateway marks immutable.
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 900,
  },
  server: {
    fs: { allow: ['..'] },
    proxy: process.env['GATEHOUSE_URL']
      ? Object.fromEntries(
          ['/api', '/metrics', '/healthz', '/readyz'].map((p) => [p, process.env['GATEHOUSE_URL'] as string]),
        )
      : {},
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test/setup.ts'],
    testTimeout: 20_000,
  },
});
