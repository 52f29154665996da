import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { processEnvironment } from '#core/config';
import { startGatewayProcess } from '#testing/start-gateway';
import {
  trivyReport,
  trivyVersion,
  writeFakeTrivy,
} from '../../../src/doors/artifacts/scan/trivy-fixture.ts';

const PASSWORD = 'trivy-e2e-admin-pw';
const lockfile = Buffer.from(
  JSON.stringify({ lockfileVersion: 3, packages: { 'node_modules/lodash': { version: '4.17.20' } } }),
);

/** Polls the artifact until `done` holds (the gateway is another process: no clock to drive). */
async function until(
  url: string,
  token: string,
  id: string,
  done: (a: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const artifact = (await (
      await fetch(`${url}/api/artifacts/${id}`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as Record<string, unknown>;
    if (done(artifact)) return artifact;
    if (Date.now() > deadline) throw new Error(`Artifact never got there: ${JSON.stringify(artifact)}`);
    await delay(200);
  }
}

void it('the gateway scans with the trivy on its PATH, gates on its findings and survives its failures', async () => {
  const fake = writeFakeTrivy(trivyReport('app-1.0.tgz'), trivyVersion('2026-11-30T06:00:00Z'));
  await using gateway = await startGatewayProcess({
    env: {
      GATEHOUSE_ADMIN_PASSWORD: PASSWORD,
      PATH: `${fake.dir}:${processEnvironment()['PATH'] ?? '/usr/bin:/bin'}`,
      GATEHOUSE_ARTIFACTS_SCAN_MAX_ATTEMPTS: '1',
      GATEHOUSE_ARTIFACTS_SCAN_POLL_INTERVAL: '200ms',
    },
  });
  try {
    const url = gateway.url;
    const login = await fetch(`${url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: PASSWORD }),
    });
    const { accessToken: token } = (await login.json()) as { accessToken: string };
    const health = await (
      await fetch(`${url}/api/health`, { headers: { authorization: `Bearer ${token}` } })
    ).text();
    assert.match(health, /scanner trivy/, health);
    const upload = async (version: string) => {
      const response = await fetch(`${url}/api/artifacts?repository=default&name=app&version=${version}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/gzip' },
        body: lockfile,
      });
      assert.equal(response.status, 201);
      return ((await response.json()) as { id: string }).id;
    };

    const id = await upload('1.0');
    const scanned = await until(url, token, id, (a) => a['status'] !== 'quarantined');
    // The default policy blocks HIGH and above: the verdict follows what trivy reported.
    assert.equal(scanned['status'], 'blocked');
    assert.match(String(scanned['statusReason']), /CVE-2021-23337/);
    assert.equal(
      readFileSync(join(fake.dir, 'input.sha256'), 'utf8').trim(),
      createHash('sha256').update(lockfile).digest('hex'),
      'trivy saw the decrypted plaintext',
    );
    const report = (await (
      await fetch(`${url}/api/artifacts/${id}/scan-results`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).json()) as Record<string, unknown>;
    assert.deepEqual(report, trivyReport('app-1.0.tgz'));

    // A trivy that fails: the scan fails (final after one attempt here), the artifact stays
    // quarantined, the reason is audited, and the gateway goes on.
    fake.setMode('fail');
    const failing = await upload('2.0');
    const failed = await until(url, token, failing, (a) => a['scanState'] === 'failed');
    assert.equal(failed['status'], 'quarantined');
    const audit = (await (
      await fetch(`${url}/api/audit-logs?action=artifacts.scan&decision=error`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).json()) as { events: { reason?: string }[] };
    assert.ok(
      audit.events.some((e) => /Trivy exited with status 1: .*FATAL/.test(e.reason ?? '')),
      JSON.stringify(audit.events),
    );
    assert.match(gateway.stderr(), /artifact scan failed/);
  } finally {
    rmSync(fake.dir, { recursive: true, force: true });
  }
});
