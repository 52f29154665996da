import createCache from '@emotion/cache';
import { CacheProvider } from '@emotion/react';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router';
import { ApiClient } from './api/client.ts';
import { App } from './app.tsx';
import './styles.css';

// The gateway serves index.html with a per-response nonce in this meta tag and in its CSP, so
// Emotion's <style> elements are allowed without 'unsafe-inline'.
const nonce = document.querySelector<HTMLMetaElement>('meta[property="csp-nonce"]')?.nonce || undefined;
const cache = createCache({ key: 'gh', ...(nonce === undefined ? {} : { nonce }) });

const client = new ApiClient({ storage: sessionStorage });
const root = document.getElementById('root');
if (root === null) throw new TypeError('index.html has no #root element');

createRoot(root).render(
  <StrictMode>
    <CacheProvider value={cache}>
      <BrowserRouter>
        <App client={client} />
      </BrowserRouter>
    </CacheProvider>
  </StrictMode>,
);
