import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createHealthRegistry } from '#core/app';
import { loadConfig, validateRaw } from '#core/config';
import { createHttpServer, httpConfigSchema } from '#core/http';
import { createLogger } from '#core/log';
import { createMetrics } from '#core/metrics';
import { createLimiterFactory } from '#core/ratelimit';
import { authorize } from '#core/rbac';
import { createSqliteDatabase } from '#core/storage';
import { ensureDevelopmentCa, issueCertificate } from '#core/tls';
import { authConfigSchema } from './config.ts';
import { registerAuthRoutes } from './routes.ts';
import { createAuthService } from './service.ts';
import { manualClock, temporaryDir } from './test-support.ts';

const log = createLogger({ level: 'silent' });

function get(url: string, ca: string, client?: { cert: string; key: string }) {
  return new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
    const req = request(`${url}/api/auth/me`, { ca, ...client }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

void describe('client certificates on the main server', () => {
  void it('authenticates a certificate from the trusted CA through the mapping rules, and nothing else', async () => {
    await using dir = await temporaryDir('mtls-http');
    const ca = await ensureDevelopmentCa(dir.path);
    const serverCert = await issueCertificate({
      ca,
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
      days: 1,
    });
    await writeFile(join(dir.path, 'server.crt'), serverCert.certPem);
    await writeFile(join(dir.path, 'server.key'), serverCert.keyPem);
    const spiffe = 'spiffe://example.test/ns/orders/sa/api';
    const client = await issueCertificate({ ca, uris: [spiffe], usage: 'client', days: 1 });
    const stranger = await issueCertificate({
      ca,
      uris: ['spiffe://other.test/x'],
      usage: 'client',
      days: 1,
    });
    const foreignCa = await ensureDevelopmentCa(join(dir.path, 'foreign'));
    const forged = await issueCertificate({ ca: foreignCa, uris: [spiffe], usage: 'client', days: 1 });

    const db = await createSqliteDatabase({ file: ':memory:' });
    const clock = manualClock(Date.now());
    const text = [
      'password: { scrypt: { ln: 10 } }',
      'mtls:',
      '  rules:',
      '    - { match: "SAN:URI:spiffe://example.test/ns/*/sa/*", principal: "svc:$1/$2", bindings: [{ role: operator, namespace: "$1" }] }',
    ].join('\n');
    const auth = await createAuthService({
      db,
      clock,
      log,
      dataDir: dir.path,
      config: (await loadConfig(authConfigSchema, { text })).config,
    });
    const server = await createHttpServer({
      config: validateRaw(
        httpConfigSchema,
        {
          listen: '127.0.0.1:0',
          tls: {
            certFile: join(dir.path, 'server.crt'),
            keyFile: join(dir.path, 'server.key'),
            clientCa: ca.certFile,
            requestClientCert: true,
          },
        },
        'test',
      ),
      log,
      metrics: createMetrics({ processMetrics: false }),
      authenticator: auth,
      authorize,
      limiters: createLimiterFactory({ clock }),
      clock,
      health: createHealthRegistry({ clock }),
    });
    registerAuthRoutes(server, auth);
    const url = (await server.listen()).replace('127.0.0.1', 'localhost');
    try {
      const ok = await get(url, ca.certPem, { cert: client.certPem, key: client.keyPem });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body['id'], 'cert:svc:orders/api');
      assert.deepEqual(ok.body['bindings'], [{ role: 'operator', namespace: 'orders' }]);
      const unmapped = await get(url, ca.certPem, { cert: stranger.certPem, key: stranger.keyPem });
      assert.equal(unmapped.status, 401);
      assert.equal(unmapped.body['code'], 'GW_ERR_AUTH_CERT_INVALID');
      // A certificate from an untrusted CA is not even considered: no credentials at all.
      const untrusted = await get(url, ca.certPem, { cert: forged.certPem, key: forged.keyPem });
      assert.equal(untrusted.status, 401);
      assert.equal(untrusted.body['code'], 'GW_ERR_AUTH_REQUIRED');
      const none = await get(url, ca.certPem);
      assert.equal(none.status, 401);
      assert.equal(none.body['code'], 'GW_ERR_AUTH_REQUIRED');
    } finally {
      await server.close(AbortSignal.timeout(2000));
      auth.close();
      await db.close();
    }
  });
});
