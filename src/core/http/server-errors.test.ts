import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GatewayError } from '#core/errors';
import { parseExposition, sampleValue } from '#core/metrics';
import { startTestServer, type TestServer } from './test-fixtures.ts';

let t: TestServer;

before(async () => {
  t = await startTestServer({ bodyLimit: '1KiB' }, (server) => {
    server.app.get('/boom', () => {
      throw new Error('secret db password xyz');
    });
    server.app.get('/async-boom', async () => {
      await Promise.resolve();
      throw new TypeError('Cannot read properties of undefined (reading "password")');
    });
    server.app.get('/teapot', () => {
      throw new GatewayError('GW_ERR_USER_NOT_FOUND', {
        message: 'No user "bob"',
        details: { user: 'bob' },
        cause: new Error('row missing'),
      });
    });
    server.app.post(
      '/items',
      {
        schema: {
          body: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: { name: { type: 'string' }, size: { type: 'integer' } },
          },
        },
      },
      (request) => ({ got: request.body }),
    );
    server.app.get(
      '/typed/:n',
      {
        schema: {
          params: { type: 'object', properties: { n: { type: 'integer' } } },
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              limit: { type: 'integer', minimum: 1 },
              exact: { type: 'boolean' },
              tag: { type: 'array', items: { type: 'string' } },
              name: { type: 'string' },
            },
          },
        },
      },
      (request) => ({ params: request.params, query: request.query }),
    );
    server.app.get('/items/:id', (request) => ({ id: (request.params as { id: string }).id }));
    server.app.put('/items/:id', () => ({}));
    // A door answering in its ecosystem's own error form inside its plugin scope.
    void server.app.register(
      (scope, _options, done) => {
        scope.setErrorHandler((error, request, reply) => {
          if (error instanceof GatewayError && error.code === 'GW_ERR_USER_NOT_FOUND') {
            return reply.code(404).send({ error: 'not found in the npm way' });
          }
          return server.sendError(request, reply, error);
        });
        scope.get('/pkg/missing', () => {
          throw new GatewayError('GW_ERR_USER_NOT_FOUND');
        });
        scope.get('/pkg/boom', () => {
          throw new Error('door secret');
        });
        done();
      },
      { prefix: '/npm' },
    );
    server.app.post('/upload', { bodyLimit: 4096 }, (request) => ({ size: String(request.body).length }));
  });
});
after(() => t[Symbol.asyncDispose]());

function post(path: string, contentType: string, body: string): Promise<Response> {
  return fetch(`${t.url}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });
}

async function problem(response: Response): Promise<Record<string, unknown>> {
  assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8');
  const body = (await response.json()) as Record<string, unknown>;
  assert.equal(body['status'], response.status);
  assert.match(String(body['errorId']), /^[0-9a-f-]{36}$/);
  assert.equal(body['type'], `urn:gatehouse:error:${String(body['code'])}`);
  assert.equal(typeof body['title'], 'string');
  assert.equal(typeof body['detail'], 'string');
  return body;
}

void describe('main server errors', () => {
  void it('answers an unknown error as GW_ERR_INTERNAL without the message or a stack, logging the cause under the same errorId', async () => {
    for (const path of ['/boom', '/async-boom']) {
      const response = await fetch(`${t.url}${path}`);
      assert.equal(response.status, 500);
      const text = await response.clone().text();
      assert.doesNotMatch(text, /secret|password|xyz|at |\.ts|stack|TypeError/);
      const body = await problem(response);
      assert.equal(body['code'], 'GW_ERR_INTERNAL');
      const line = t.logs.find((l) => l['errorId'] === body['errorId']);
      assert.ok(line, 'the log holds the errorId');
      assert.match(
        JSON.stringify(line),
        path === '/boom' ? /secret db password xyz/ : /reading \\"password\\"/,
      );
    }
  });

  void it('renders a GatewayError with its status, safe message and details but not its cause', async () => {
    const response = await fetch(`${t.url}/teapot`);
    assert.equal(response.status, 404);
    const body = await problem(response);
    assert.equal(body['code'], 'GW_ERR_USER_NOT_FOUND');
    assert.equal(body['detail'], 'No user "bob"');
    assert.equal(body['user'], 'bob');
    assert.equal(body['instance'], '/teapot');
    assert.doesNotMatch(JSON.stringify(body), /row missing/);
  });

  void it('lets a door answer in its own form inside its plugin scope, falling back to problem+json', async () => {
    const own = await fetch(`${t.url}/npm/pkg/missing`);
    assert.equal(own.status, 404);
    assert.deepEqual(await own.json(), { error: 'not found in the npm way' });
    const fallback = await fetch(`${t.url}/npm/pkg/boom`);
    assert.equal(fallback.status, 500);
    assert.doesNotMatch(await fallback.clone().text(), /door secret/);
    assert.equal((await problem(fallback))['code'], 'GW_ERR_INTERNAL');
    const outside = await fetch(`${t.url}/teapot`);
    assert.equal((await problem(outside))['code'], 'GW_ERR_USER_NOT_FOUND');
  });

  void it('answers 404 GW_ERR_ROUTE_NOT_FOUND and 405 with Allow', async () => {
    const missing = await fetch(`${t.url}/nothing/here?x=1`);
    assert.equal(missing.status, 404);
    assert.equal((await problem(missing))['code'], 'GW_ERR_ROUTE_NOT_FOUND');
    const wrong = await fetch(`${t.url}/items/42`, { method: 'DELETE' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET, HEAD, PUT');
    const body = await problem(wrong);
    assert.equal(body['code'], 'GW_ERR_METHOD_NOT_ALLOWED');
  });

  void it('answers 413 for a body over the limit, and a route may raise its limit', async () => {
    const big = 'x'.repeat(2048);
    const response = await post('/items', 'application/json', JSON.stringify({ name: big }));
    assert.equal(response.status, 413);
    assert.equal((await problem(response))['code'], 'GW_ERR_REQUEST_TOO_LARGE');
    const raised = await post('/upload', 'text/plain', big);
    assert.equal(raised.status, 200);
    assert.deepEqual(await raised.json(), { size: 2048 });
  });

  void it('answers 415 for an unsupported media type', async () => {
    const response = await post('/items', 'application/x-weird', 'a=b');
    assert.equal(response.status, 415);
    assert.equal((await problem(response))['code'], 'GW_ERR_REQUEST_UNSUPPORTED_MEDIA');
  });

  void it('answers 400 for malformed JSON without echoing the parser message', async () => {
    const response = await post('/items', 'application/json', '{"name": ');
    assert.equal(response.status, 400);
    const body = await problem(response);
    assert.equal(body['code'], 'GW_ERR_REQUEST_INVALID');
    assert.equal(body['detail'], 'The request body is not valid JSON');
  });

  void it('answers a malformed percent-encoding or an over-long path parameter as problem+json with the security headers, without echoing the path', async () => {
    for (const [path, status] of [
      ['/items/%E0%A4%A', 400],
      [`/items/${'x'.repeat(501)}`, 414],
    ] as const) {
      const response = await fetch(`${t.url}${path}`);
      assert.equal(response.status, status, path);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
      assert.match(response.headers.get('content-security-policy') ?? '', /default-src 'none'/);
      assert.ok((response.headers.get('x-request-id') ?? '') !== '', 'a request id');
      const body = await problem(response);
      assert.equal(body['code'], 'GW_ERR_REQUEST_INVALID');
      assert.ok(!JSON.stringify(body).includes('FST_'), 'no framework code');
      assert.ok(!String(body['detail']).includes('%E0') && !String(body['detail']).includes('xxxx'));
    }
  });

  void it('answers 400 with details.errors for schema violations', async () => {
    const response = await post('/items', 'application/json', JSON.stringify({ size: 'big' }));
    assert.equal(response.status, 400);
    const body = await problem(response);
    assert.equal(body['code'], 'GW_ERR_REQUEST_INVALID');
    const errors = body['errors'] as { path: string; message: string }[];
    assert.ok(
      errors.some((e) => e.path === 'body/name' && /required/.test(e.message)),
      JSON.stringify(errors),
    );
    const ok = await fetch(`${t.url}/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name":"a"}',
    });
    assert.deepEqual(await ok.json(), { got: { name: 'a' } });
  });

  void it('refuses a body value of the wrong type instead of converting it, naming the field', async () => {
    for (const [body, field, expected] of [
      [{ name: ['admin'] }, 'body/name', 'must be string'],
      [{ name: 12 }, 'body/name', 'must be string'],
      [{ name: true }, 'body/name', 'must be string'],
      [{ name: 'a', size: '12' }, 'body/size', 'must be integer'],
      [{ name: 'a', size: [12] }, 'body/size', 'must be integer'],
    ] as const) {
      const response = await post('/items', 'application/json', JSON.stringify(body));
      assert.equal(response.status, 400, JSON.stringify(body));
      const problemBody = await problem(response);
      assert.equal(problemBody['code'], 'GW_ERR_REQUEST_INVALID');
      assert.equal(problemBody['detail'], `The request body failed validation: ${field} ${expected}`);
      assert.deepEqual(problemBody['errors'], [{ path: field, message: expected }]);
    }
  });

  void it('still converts querystring and path parameters to the types their schemas name', async () => {
    const ok = await fetch(`${t.url}/typed/7?limit=20&exact=true&tag=a&name=5`);
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), {
      params: { n: 7 },
      query: { limit: 20, exact: true, tag: ['a'], name: '5' },
    });
    const many = await fetch(`${t.url}/typed/7?tag=a&tag=b`);
    assert.deepEqual(((await many.json()) as { query: unknown }).query, { tag: ['a', 'b'] });
    for (const [path, field] of [
      ['/typed/7?limit=ten', 'querystring/limit'],
      ['/typed/7?limit=1.5', 'querystring/limit'],
      ['/typed/7?exact=yes', 'querystring/exact'],
      ['/typed/seven', 'params/n'],
    ] as const) {
      const response = await fetch(`${t.url}${path}`);
      assert.equal(response.status, 400, path);
      const body = await problem(response);
      assert.equal((body['errors'] as { path: string }[])[0]?.path, field, path);
    }
  });

  void it('sets security headers on every response, errors included, and no HSTS over plain HTTP', async () => {
    for (const path of ['/healthz', '/nothing', '/boom']) {
      const response = await fetch(`${t.url}${path}`);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(response.headers.get('x-frame-options'), 'DENY');
      assert.equal(response.headers.get('referrer-policy'), 'no-referrer');
      assert.match(response.headers.get('content-security-policy') ?? '', /default-src 'none'/);
      assert.equal(response.headers.get('strict-transport-security'), null);
      await response.arrayBuffer();
    }
  });

  void it('echoes a plain X-Request-Id and replaces a hostile one', async () => {
    const kept = await fetch(`${t.url}/healthz`, { headers: { 'x-request-id': 'abc-123' } });
    assert.equal(kept.headers.get('x-request-id'), 'abc-123');
    const replaced = await fetch(`${t.url}/healthz`, { headers: { 'x-request-id': 'evil\tid with spaces' } });
    assert.match(replaced.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const fresh = await fetch(`${t.url}/healthz`);
    assert.match(fresh.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    await Promise.all([kept.text(), replaced.text(), fresh.text()]);
  });

  void it('counts requests by route pattern, never by raw URL', async () => {
    await (await fetch(`${t.url}/items/1`)).text();
    await (await fetch(`${t.url}/items/2`)).text();
    await (await fetch(`${t.url}/random/${Date.now()}`)).text();
    const response = await fetch(`${t.url}/metrics`);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    const samples = parseExposition(await response.text());
    assert.equal(
      sampleValue(samples, 'gatehouse_http_requests_total', {
        method: 'GET',
        route: '/items/:id',
        status: '200',
      }),
      2,
    );
    assert.ok(
      (sampleValue(samples, 'gatehouse_http_requests_total', { route: 'unmatched', status: '404' }) ?? 0) >=
        1,
    );
    assert.equal(
      sampleValue(samples, 'gatehouse_http_request_duration_seconds_count', {
        method: 'GET',
        route: '/items/:id',
      }),
      2,
    );
    assert.ok(!samples.some((s) => /\/items\/1|random/.test(s.labels['route'] ?? '')));
  });
});
