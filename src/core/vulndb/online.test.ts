import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { OsvClient } from './online.ts';

let now = Date.parse('2026-11-20T00:00:00Z');
const clock = { now: () => now };
let mode: 'ok' | 'limited' | 'broken' = 'ok';
const calls: string[] = [];

const RECORD = {
  id: 'GHSA-on',
  modified: '2026-01-01T00:00:00Z',
  affected: [{ package: { ecosystem: 'npm', name: 'left-pad' }, versions: ['1.0.0'] }],
};

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  let body = '';
  for await (const chunk of req) body += String(chunk);
  calls.push(`${req.method} ${req.url}`);
  if (mode === 'limited') {
    res.writeHead(429, { 'retry-after': '30' }).end();
    return;
  }
  if (mode === 'broken') {
    res.writeHead(500).end('oops');
    return;
  }
  if (req.url === '/osv/v1/querybatch') {
    const { queries } = JSON.parse(body) as { queries: { package: { name: string } }[] };
    const results = queries.map((q) =>
      q.package.name === 'left-pad' ? { vulns: [{ id: RECORD.id, modified: RECORD.modified }] } : {},
    );
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ results }));
    return;
  }
  if (req.url === '/osv/v1/vulns/GHSA-on') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(RECORD));
    return;
  }
  res.writeHead(404).end();
}

const server = createServer((req, res) => void handle(req, res));
let url: string;
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/osv`;
});
after(() => server.close());

void describe('online OSV client', () => {
  void it('batches concurrent queries into one request and caches answers', async () => {
    const client = new OsvClient({ url, timeoutMs: 2000, cacheTtlMs: 60_000, clock });
    calls.length = 0;
    const [a, b] = await Promise.all([
      client.recordsFor('npm', 'left-pad'),
      client.recordsFor('npm', 'is-odd'),
    ]);
    assert.deepEqual(
      a.map((r) => r.id),
      ['GHSA-on'],
    );
    assert.deepEqual(b, []);
    assert.deepEqual(calls, ['POST /osv/v1/querybatch', 'GET /osv/v1/vulns/GHSA-on']);
    await client.recordsFor('npm', 'left-pad');
    assert.equal(calls.length, 2, 'answered from the cache');
    now += 61_000;
    await client.recordsFor('npm', 'left-pad');
    assert.equal(calls.length, 3, 'the package list expired, the record was still fresh by id and modified');
  });

  void it('fails fast after a 429 until Retry-After has passed', async () => {
    const client = new OsvClient({ url, timeoutMs: 2000, cacheTtlMs: 60_000, clock });
    mode = 'limited';
    calls.length = 0;
    await assert.rejects(client.recordsFor('npm', 'a'), { code: 'GW_ERR_VULNDB_RATE_LIMITED' });
    await assert.rejects(client.recordsFor('npm', 'b'), { code: 'GW_ERR_VULNDB_RATE_LIMITED' });
    assert.equal(calls.length, 1, 'the second call never reached the service');
    mode = 'ok';
    now += 31_000;
    assert.equal((await client.recordsFor('npm', 'left-pad')).length, 1);
  });

  void it('reports server errors and unreachable services', async () => {
    mode = 'broken';
    const client = new OsvClient({ url, timeoutMs: 2000, cacheTtlMs: 60_000, clock });
    await assert.rejects(client.recordsFor('npm', 'c'), { code: 'GW_ERR_VULNDB_ONLINE_FAILED' });
    mode = 'ok';
    const dead = new OsvClient({ url: 'http://127.0.0.1:1/osv', timeoutMs: 2000, cacheTtlMs: 1, clock });
    await assert.rejects(dead.recordsFor('npm', 'c'), { code: 'GW_ERR_VULNDB_ONLINE_FAILED' });
  });

  void it('answers policy lookups through the vulnerability database when enabled', async () => {
    mode = 'ok';
    const { createSqliteDatabase } = await import('#core/storage');
    const { validateRaw } = await import('#core/config');
    const { vulndbConfigSchema } = await import('./config.ts');
    const { VulnerabilityDatabase } = await import('./database.ts');
    const db = await createSqliteDatabase({ file: ':memory:' });
    const vdb = new VulnerabilityDatabase({
      db,
      clock,
      config: validateRaw(vulndbConfigSchema, { online: { enabled: true, url } }, 'test'),
    });
    await vdb.migrate();
    const pkg = await vdb.forPackage('npm', 'left-pad');
    assert.equal(pkg.available, true, 'the online source answers even while the local database is empty');
    assert.deepEqual(
      pkg.affecting('1.0.0').map((a) => a.id),
      ['GHSA-on'],
    );
    assert.deepEqual(pkg.affecting('1.0.1'), []);
    assert.throws(
      () =>
        new VulnerabilityDatabase({
          db,
          clock,
          config: validateRaw(vulndbConfigSchema, { online: { enabled: true } }, 'test'),
        }),
      TypeError,
    );
    await db.close();
  });
});
