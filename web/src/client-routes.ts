/**
 * The console's client-side routes, as find-my-way patterns. The build writes them to
 * `dist/client-routes.json`; the gateway serves index.html on exactly these paths, so an unknown
 * path keeps the server's own 404 and a wrong method on an API path keeps its 405.
 */
export const CLIENT_ROUTES = [
  '/login',
  '/artifacts',
  '/artifacts/*',
  '/registry',
  '/audit',
  '/admin/*',
  '/edge',
  '/health',
] as const;
