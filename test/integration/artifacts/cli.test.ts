import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { artifactsCommands } from '../../../src/cli/artifacts.ts';
import { runCliCaptured } from '#testing/cli-run';
import { startDoor } from './harness.ts';

async function cli(url: string, user: string, argv: readonly string[], home: string) {
  const run = await runCliCaptured(
    [...argv, '--server', url, '--token', `token-${user}`],
    artifactsCommands,
    {
      HOME: home,
      GATEHOUSE_HOME: home,
    },
  );
  return { ...run, json: () => JSON.parse(run.out) as Record<string, unknown> };
}

void it('gatehouse artifacts push, ls, pull (resumed), sign, verify and rm', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicKey = key.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  await using h = await startDoor({ trust: { mode: 'require', keys: [{ id: 'release', publicKey }] } });
  try {
    const data = randomBytes(1_500_000);
    const sha = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(dir, 'tool.bin'), data);
    const pushed = await cli(
      h.url,
      'publisher',
      [
        'artifacts',
        'push',
        join(dir, 'tool.bin'),
        '--name',
        'tool',
        '--version',
        '1.0',
        '--repository',
        'team',
        '--json',
      ],
      dir,
    );
    assert.equal(pushed.code, 0, pushed.err);
    const id = String(pushed.json()['id']);
    assert.equal(pushed.json()['sha256'], sha);
    await h.door.scanQueue().drain();
    const listed = await cli(h.url, 'consumer', ['artifacts', 'ls', '--json'], dir);
    assert.equal((listed.json()['items'] as unknown[]).length, 1);
    // Fail closed: no signature yet, so the trust policy refuses the download.
    const refused = await cli(h.url, 'consumer', ['artifacts', 'pull', id, '-o', join(dir, 'out.bin')], dir);
    // A policy refusal, as verify reports it (10), not a credential problem (3).
    assert.equal(refused.code, 10, refused.err);
    assert.match(refused.err, /GW_ERR_ARTIFACTS_UNTRUSTED/);
    assert.equal((await cli(h.url, 'consumer', ['artifacts', 'verify', id], dir)).code, 10);
    writeFileSync(join(dir, 'key.pem'), key.privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const signed = await cli(
      h.url,
      'publisher',
      [
        'artifacts',
        'sign',
        id,
        '--key',
        join(dir, 'key.pem'),
        '--file',
        join(dir, 'tool.bin'),
        '--bundle-out',
        join(dir, 'tool.sigstore.json'),
        '--json',
      ],
      dir,
    );
    assert.equal(signed.code, 0, signed.err);
    assert.equal(
      JSON.parse(readFileSync(join(dir, 'tool.sigstore.json'), 'utf8')).mediaType,
      'application/vnd.dev.sigstore.bundle.v0.3+json',
    );
    assert.equal(
      (await cli(h.url, 'consumer', ['artifacts', 'verify', id, '--json'], dir)).json()['signer'],
      'key:release',
    );
    // Resume: a partial file of the first 600 kB is completed by a Range request.
    writeFileSync(join(dir, 'out.bin.part'), data.subarray(0, 600_000));
    const pulled = await cli(
      h.url,
      'consumer',
      ['artifacts', 'pull', id, '-o', join(dir, 'out.bin'), '--json'],
      dir,
    );
    assert.equal(pulled.code, 0, pulled.err);
    assert.equal(pulled.json()['resumed'], true);
    assert.deepEqual(readFileSync(join(dir, 'out.bin')), data);
    // A partial file of other bytes (another artifact pulled to the same name) is caught by the
    // digest check and the file is fetched once more from the start, not resumed again.
    writeFileSync(join(dir, 'bad.bin.part'), randomBytes(600_000));
    const bad = await cli(
      h.url,
      'consumer',
      ['artifacts', 'pull', id, '-o', join(dir, 'bad.bin'), '--json'],
      dir,
    );
    assert.equal(bad.code, 0, bad.err);
    assert.equal(bad.json()['resumed'], false);
    assert.deepEqual(readFileSync(join(dir, 'bad.bin')), data);
    assert.equal((await cli(h.url, 'consumer', ['artifacts', 'rm', id], dir)).code, 10);
    assert.equal((await cli(h.url, 'admin', ['artifacts', 'rm', id], dir)).code, 0);
    const audit = await h.core.audit.query({ action: 'artifacts.signature.check' });
    assert.deepEqual([...new Set(audit.events.map((e) => e.decision))].sort(), ['allow', 'deny']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void it('gatehouse artifacts scan: queue a rescan, print the report and the SBOM, refuse what it must', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cli-scan-'));
  await using h = await startDoor();
  try {
    const up = await h.call(
      'publisher',
      'POST',
      '/api/artifacts?repository=team&name=s&version=1',
      randomBytes(500),
    );
    const id = String(up.json()['id']);
    // Before the first scan there is no report yet: a clear error, not an empty document.
    const early = await cli(h.url, 'consumer', ['artifacts', 'scan', id, '--report'], dir);
    assert.equal(early.code, 1);
    assert.match(early.err, /GW_ERR_ARTIFACTS_SCAN_PENDING/);
    await h.door.scanQueue().drain();

    const report = await cli(h.url, 'consumer', ['artifacts', 'scan', id, '--report', '--json'], dir);
    assert.equal(report.code, 0, report.err);
    assert.equal(report.json()['SchemaVersion'], 2);
    const sbom = await cli(h.url, 'auditor', ['artifacts', 'scan', id, '--sbom'], dir);
    assert.equal(sbom.code, 0, sbom.err);
    assert.equal((JSON.parse(sbom.out) as Record<string, unknown>)['bomFormat'], 'CycloneDX');

    // Queueing a rescan is an admin's: others are refused with the permission exit code.
    const refused = await cli(h.url, 'publisher', ['artifacts', 'scan', id], dir);
    assert.equal(refused.code, 10);
    assert.match(refused.err, /GW_ERR_RBAC_DENIED/);
    const queued = await cli(h.url, 'admin', ['artifacts', 'scan', id], dir);
    assert.equal(queued.code, 0, queued.err);
    assert.equal(queued.out.trim(), `scan queued for ${id}; verdict stays "approved" until it finishes`);
    const json = await cli(h.url, 'admin', ['artifacts', 'scan', id, '--json'], dir);
    assert.deepEqual(json.json(), { id, scanState: 'pending', status: 'approved' });
    await h.door.scanQueue().drain();
    const scans = await h.core.audit.query({ action: 'artifacts.scan' });
    assert.ok(scans.events.filter((e) => e.decision === 'info').length >= 2, 'the rescan ran');
    const requests = await h.core.audit.query({ action: 'artifacts.scan.request' });
    assert.deepEqual(
      requests.events.map((e) => [e.actor, e.decision]),
      [
        ['user:admin', 'allow'],
        ['user:admin', 'allow'],
      ],
    );

    const missing = await cli(
      h.url,
      'admin',
      ['artifacts', 'scan', '00000000-0000-4000-8000-000000000000'],
      dir,
    );
    assert.equal(missing.code, 1);
    assert.match(missing.err, /GW_ERR_ARTIFACTS_NOT_FOUND/);
    assert.equal((await cli(h.url, 'admin', ['artifacts', 'scan'], dir)).code, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void it('gatehouse artifacts pull without -o writes no file over one that exists, whatever name the publisher chose', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
  const cwd = process.cwd();
  await using h = await startDoor();
  try {
    const data = randomBytes(4096);
    const up = await h.call(
      'publisher',
      'POST',
      '/api/artifacts?repository=team&name=cfg&version=1&fileName=.npmrc',
      data,
    );
    assert.equal(up.status, 201, up.body.toString());
    const id = String(up.json()['id']);
    await h.door.scanQueue().drain();
    writeFileSync(join(dir, '.npmrc'), 'registry=internal\n');
    process.chdir(dir);
    const refused = await cli(h.url, 'consumer', ['artifacts', 'pull', id], dir);
    assert.equal(refused.code, 2, refused.err);
    assert.match(refused.err, /\.npmrc" exists.*-o/);
    assert.equal(readFileSync(join(dir, '.npmrc'), 'utf8'), 'registry=internal\n');
    assert.equal(existsSync(join(dir, '.npmrc.part')), false);
    // Asked for by name, the file is the caller's to replace; a new name is written as before.
    const named = await cli(h.url, 'consumer', ['artifacts', 'pull', id, '-o', '.npmrc'], dir);
    assert.equal(named.code, 0, named.err);
    assert.deepEqual(readFileSync(join(dir, '.npmrc')), data);
    rmSync(join(dir, '.npmrc'));
    const fresh = await cli(h.url, 'consumer', ['artifacts', 'pull', id], dir);
    assert.equal(fresh.code, 0, fresh.err);
    assert.deepEqual(readFileSync(join(dir, '.npmrc')), data);
  } finally {
    process.chdir(cwd);
    rmSync(dir, { recursive: true, force: true });
  }
});

void it('gatehouse artifacts pull saves a file whose name takes the whole 255 bytes a file system allows', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
  await using h = await startDoor();
  try {
    const data = randomBytes(2048);
    const fileName = `${'報'.repeat(84)}.b`;
    const up = await h.call(
      'admin',
      'POST',
      `/api/artifacts?repository=team&name=long&version=1&fileName=${encodeURIComponent(fileName)}`,
      data,
    );
    assert.equal(up.status, 201, up.body.toString());
    const id = String(up.json()['id']);
    await h.door.scanQueue().drain();
    // Its partial file cannot be "<name>.part" (260 bytes): the download still goes through.
    const pulled = await cli(h.url, 'consumer', ['artifacts', 'pull', id, '-o', join(dir, fileName)], dir);
    assert.equal(pulled.code, 0, pulled.err);
    assert.deepEqual(readFileSync(join(dir, fileName)), data);
    assert.deepEqual(readdirSync(dir), [fileName]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void it('gatehouse artifacts sign refuses a key that is no ECDSA P-256 key before anything is stored', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cli-'));
  await using h = await startDoor();
  try {
    const data = randomBytes(1024);
    writeFileSync(join(dir, 'a.bin'), data);
    const up = await h.call('publisher', 'POST', '/api/artifacts?repository=team&name=k&version=1', data);
    const id = String(up.json()['id']);
    for (const [name, pair] of [
      ['rsa', generateKeyPairSync('rsa', { modulusLength: 2048 })],
      ['p384', generateKeyPairSync('ec', { namedCurve: 'P-384' })],
      ['ed25519', generateKeyPairSync('ed25519')],
    ] as const) {
      writeFileSync(join(dir, `${name}.pem`), pair.privateKey.export({ format: 'pem', type: 'pkcs8' }));
      const run = await cli(
        h.url,
        'publisher',
        ['artifacts', 'sign', id, '--key', join(dir, `${name}.pem`), '--file', join(dir, 'a.bin')],
        dir,
      );
      // An RSA signature was stored as a P-256 one and could never verify.
      assert.equal(run.code, 2, `${name}: ${run.err}`);
      assert.match(run.err, /P-256/, name);
    }
    const listed = await h.call('publisher', 'GET', `/api/artifacts/${id}/signatures`);
    assert.deepEqual(listed.json()['signatures'], []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
