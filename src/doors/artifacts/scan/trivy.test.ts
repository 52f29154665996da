import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ScanTarget } from './port.ts';
import { trivyReport, trivyVersion, writeFakeTrivy } from './trivy-fixture.ts';
import { createTrivyScanner, fromTrivyReport, TRIVY_COMMON_ARGS, trivyAvailable } from './trivy.ts';
import { bufferAccess } from './zip.ts';

const lockfile = Buffer.from(
  JSON.stringify({ lockfileVersion: 3, packages: { 'node_modules/lodash': { version: '4.17.20' } } }),
);

function target(fileName: string, data: Buffer): ScanTarget {
  return {
    id: 'a1',
    name: 'app',
    version: '1',
    fileName,
    sha256: createHash('sha256').update(data).digest('hex'),
    size: data.length,
    access: bufferAccess(data),
    open: async () =>
      (async function* () {
        yield data;
      })(),
  };
}

const clock = { now: () => Date.parse('2026-12-01T00:00:00Z') };
const fake = writeFakeTrivy(trivyReport('app-1.tgz'), trivyVersion('2026-11-30T06:00:00Z'));
after(() => rmSync(fake.dir, { recursive: true, force: true }));
const scannerWith = (timeoutMs = 30_000) =>
  createTrivyScanner(clock, { command: fake.command, timeoutMs: () => timeoutMs });
const read = (name: string) => readFileSync(join(fake.dir, name), 'utf8').trim();

void describe('Trivy adapter (a fake trivy executable)', () => {
  void it('finds the binary only when it answers --version', () => {
    assert.equal(trivyAvailable(fake.command), true);
    assert.equal(trivyAvailable(join(fake.dir, 'absent')), false);
  });

  void it('runs trivy fs offline on a private copy of the plaintext and keeps its report', async () => {
    fake.setMode('ok');
    const outcome = await scannerWith().scan(target('app-1.tgz', lockfile));
    const args = read('args').split('\n');
    assert.deepEqual(args.slice(0, -1), ['fs', ...TRIVY_COMMON_ARGS]);
    assert.ok(args.includes('--skip-db-update') && args.includes('--offline-scan'), 'never online');
    const copy = args.at(-1) ?? '';
    assert.equal(read('input.sha256'), createHash('sha256').update(lockfile).digest('hex'));
    assert.equal(read('input.mode'), '600', 'the copy is readable by the gateway only');
    assert.equal(existsSync(dirname(copy)), false, 'the copy is removed after the scan');
    assert.equal(outcome.scanner, 'trivy');
    assert.deepEqual(outcome.report, trivyReport('app-1.tgz'));
    assert.deepEqual(
      outcome.packages.map((p) => `${p.name}@${p.version}`),
      ['lodash@4.17.20', 'ms@2.1.3'],
    );
    assert.deepEqual(
      outcome.findings.map((f) => [f.pkg.name, f.advisory.id, f.advisory.severity]),
      [['lodash', 'CVE-2021-23337', 'high']],
    );
    assert.equal(outcome.databaseUpdatedAt, Date.parse('2026-11-30T06:00:00Z'));
    assert.equal((outcome.sbom as { bomFormat?: string }).bomFormat, 'CycloneDX');
  });

  void it('scans image tarballs with trivy image --input', async () => {
    fake.setMode('ok');
    await scannerWith().scan(target('image.tar', lockfile));
    const args = read('args').split('\n');
    assert.equal(args[0], 'image');
    assert.equal(args.at(-2), '--input');
  });

  void it('turns a failing, babbling or hanging trivy into a clear scan failure and cleans up', async () => {
    fake.setMode('fail');
    await assert.rejects(scannerWith().scan(target('a.tgz', lockfile)), (error: Error) => {
      assert.match(
        error.message,
        /^Trivy exited with status 1: .*FATAL.*failed to open the vulnerability DB/,
      );
      return true;
    });
    assert.equal(existsSync(dirname(read('args').split('\n').at(-1) ?? '')), false);
    fake.setMode('garbage');
    await assert.rejects(
      scannerWith().scan(target('a.tgz', lockfile)),
      /Trivy printed \d+ bytes that are not JSON/,
    );
    fake.setMode('hang');
    const started = Date.now();
    await assert.rejects(
      scannerWith(500).scan(target('a.tgz', lockfile)),
      /did not finish within 500 ms and was killed/,
    );
    assert.ok(Date.now() - started < 10_000, 'killed, not waited for');
    assert.equal(existsSync(dirname(read('args').split('\n').at(-1) ?? '')), false);
    await assert.rejects(
      createTrivyScanner(clock, { command: join(fake.dir, 'absent') }).scan(target('a.tgz', lockfile)),
      /Trivy is not installed/,
    );
  });

  void it('stops a running trivy when the gateway shuts down', async () => {
    fake.setMode('hang');
    rmSync(join(fake.dir, 'args'), { force: true });
    const controller = new AbortController();
    const scan = scannerWith().scan(target('a.tgz', lockfile), controller.signal);
    // The scan has started once the fake recorded its arguments; then shut down.
    const running = scan.catch((error: unknown) => error);
    while (!existsSync(join(fake.dir, 'args')) || read('mode') !== 'hang')
      await new Promise((r) => setImmediate(r));
    controller.abort();
    assert.match(String(await running), /shutting down/);
  });

  void it('maps the report fields, with unknown severities kept unknown', () => {
    const report = trivyReport('x');
    const { packages, findings } = fromTrivyReport(report);
    assert.equal(findings[0]?.pkg, packages[0]);
    const odd = structuredClone(report) as { Results: { Vulnerabilities: { Severity: string }[] }[] };
    const first = odd.Results[0]?.Vulnerabilities[0];
    if (first !== undefined) first.Severity = 'UNKNOWN';
    assert.equal(fromTrivyReport(odd).findings[0]?.advisory.severity, 'unknown');
  });
});
