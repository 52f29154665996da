/**
 * A tiny in-process HTTP answerer for component tests: routes `METHOD path` to handlers and
 * records every request. End-to-end tests use the real gateway instead.
 */
export interface Seen {
  readonly method: string;
  readonly path: string;
  readonly headers: Headers;
  readonly body: unknown;
}

export type Handler = (request: Seen) => Response | Promise<Response>;

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

export function problem(status: number, code: string, detail: string, errorId = 'err-123'): Response {
  return new Response(JSON.stringify({ type: 'about:blank', title: code, status, detail, code, errorId }), {
    status,
    headers: { 'content-type': 'application/problem+json' },
  });
}

/** A JWT-shaped token (unsigned: the console never verifies, the server does). */
export function token(claims: Record<string, unknown>): string {
  const enc = (o: unknown) =>
    btoa(JSON.stringify(o)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  return `${enc({ alg: 'EdDSA', typ: 'at+jwt' })}.${enc(claims)}.sig`;
}

export function fakeServer(routes: Record<string, Handler>) {
  const seen: Seen[] = [];
  const fetchImpl = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input), 'http://console.test');
    const method = init?.method ?? 'GET';
    const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as unknown) : init?.body;
    const request = { method, path: url.pathname + url.search, headers: new Headers(init?.headers), body };
    seen.push(request);
    const handler = routes[`${method} ${url.pathname}`];
    if (handler === undefined)
      return problem(404, 'GW_ERR_ROUTE_NOT_FOUND', `No endpoint "${method} ${url.pathname}"`);
    return handler(request);
  };
  return { fetch: fetchImpl as typeof fetch, seen };
}
