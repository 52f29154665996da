import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { VulnerabilitySource } from '#core/policy';
import { createBuiltinScanner } from './builtin.ts';
import { bufferTarget, makeTar, makeTgz, makeZip } from './fixtures.ts';
import type { ScanLimits } from './limits.ts';
import { CRITICAL, osvRecord, vulndbWith } from './osv-fixture.ts';

const LIMITS: ScanLimits = {
  maxEntries: 10_000,
  maxExpandedSize: 512 * 1024 * 1024,
  maxDepth: 5,
  maxRatio: 200,
  maxBufferedFile: 64 * 1024 * 1024,
};

const target = bufferTarget;

function scanner(limits: Partial<ScanLimits> = {}, vulnerabilities?: VulnerabilitySource) {
  return createBuiltinScanner({
    limits: () => ({ ...LIMITS, ...limits }),
    clock: { now: () => Date.parse('2024-06-01T00:00:00Z') },
    ...(vulnerabilities === undefined ? {} : { vulnerabilities }),
  });
}

const names = (o: { packages: readonly { name: string; version: string }[] }) =>
  o.packages.map((p) => `${p.name}@${p.version}`).sort();

const LOCK = JSON.stringify({
  name: 'app',
  lockfileVersion: 3,
  packages: {
    '': { name: 'app', version: '1.0.0' },
    'node_modules/lodash': { version: '4.17.20' },
    'node_modules/@scope/util': { version: '2.0.0' },
  },
});

void describe('built-in scanner', () => {
  void it('reads an npm tarball made by `npm pack` and the SBOM it ships', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-npm-'));
    try {
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({ name: 'demo-pkg', version: '1.2.3', files: ['index.js', 'bom.json'] }),
      );
      // npm never packs lockfiles; packages that ship their dependency list do it as an SBOM.
      const bom = {
        bomFormat: 'CycloneDX',
        specVersion: '1.5',
        components: [{ purl: 'pkg:npm/lodash@4.17.20' }, { purl: 'pkg:npm/%40scope/util@2.0.0' }],
      };
      writeFileSync(join(dir, 'bom.json'), JSON.stringify(bom));
      writeFileSync(join(dir, 'index.js'), 'module.exports = 1;\n');
      const file = execFileSync('npm', ['pack', '--silent', '--ignore-scripts'], {
        cwd: dir,
        encoding: 'utf8',
      }).trim();
      const out = await scanner().scan(target(file, readFileSync(join(dir, file))));
      assert.deepEqual(names(out), ['@scope/util@2.0.0', 'demo-pkg@1.2.3', 'lodash@4.17.20']);
      assert.equal(out.problems.length, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void it('finds packages in a jar with a nested jar, a wheel and every lockfile kind', async () => {
    const inner = makeZip([
      {
        name: 'META-INF/maven/org.example/inner/pom.properties',
        data: 'groupId=org.example\nartifactId=inner\nversion=0.9\n',
      },
    ]);
    const jar = makeZip([
      {
        name: 'META-INF/maven/org.example/app/pom.properties',
        data: 'groupId=org.example\nartifactId=app\nversion=1.0\n',
      },
      { name: 'BOOT-INF/lib/inner.jar', data: inner },
    ]);
    const wheel = makeZip([
      { name: 'demo-1.0.dist-info/METADATA', data: 'Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n' },
    ]);
    const tgz = makeTgz([
      { name: 'app/lib/app.jar', data: jar },
      { name: 'app/dist/demo-1.0-py3-none-any.whl', data: wheel },
      {
        name: 'app/yarn.lock',
        data: '# yarn lockfile v1\n\n"left-pad@^1.0.0", left-pad@1.3.0:\n  version "1.3.0"\n  resolved "x"\n',
      },
      {
        name: 'app/pnpm-lock.yaml',
        data: "lockfileVersion: '9.0'\npackages:\n  express@4.18.2:\n    resolution: {integrity: sha512-x}\n",
      },
      { name: 'app/requirements.txt', data: 'requests==2.31.0  # http\nflask[async]==3.0.0\n-r other.txt\n' },
      {
        name: 'app/poetry.lock',
        data: '[[package]]\nname = "urllib3"\nversion = "2.0.7"\n\n[package.dependencies]\nx = "1"\n',
      },
      {
        name: 'app/Pipfile.lock',
        data: JSON.stringify({ default: { django: { version: '==4.2.0' } }, develop: {} }),
      },
      {
        name: 'app/go.mod',
        data: 'module x\n\nrequire (\n\tgolang.org/x/text v0.3.7\n)\nrequire github.com/pkg/errors v0.9.1 // indirect\n',
      },
      {
        name: 'app/pom.xml',
        data: '<project><groupId>g</groupId><artifactId>a</artifactId><version>1</version><dependencies><dependency><groupId>log4j</groupId><artifactId>log4j-core</artifactId><version>2.14.1</version></dependency><dependency><groupId>x</groupId><artifactId>y</artifactId><version>${v}</version></dependency></dependencies></project>',
      },
      { name: 'app/Cargo.lock', data: 'version = 3\n\n[[package]]\nname = "serde"\nversion = "1.0.190"\n' },
      {
        name: 'app/Gemfile.lock',
        data: 'GEM\n  remote: x\n  specs:\n    rails (7.0.4)\n      actionpack (= 7.0.4)\n\nPLATFORMS\n  ruby\n',
      },
      {
        name: 'app/composer.lock',
        data: JSON.stringify({ packages: [{ name: 'monolog/monolog', version: 'v2.9.1' }] }),
      },
      {
        name: 'app/sbom.cdx.json',
        data: JSON.stringify({
          bomFormat: 'CycloneDX',
          specVersion: '1.5',
          components: [{ purl: 'pkg:npm/%40angular/core@16.0.0' }],
        }),
      },
      {
        name: 'app/sbom.spdx.json',
        data: JSON.stringify({
          spdxVersion: 'SPDX-2.3',
          packages: [
            { externalRefs: [{ referenceType: 'purl', referenceLocator: 'pkg:pypi/jinja2@3.1.2' }] },
          ],
        }),
      },
    ]);
    const out = await scanner().scan(target('app.tgz', tgz));
    assert.deepEqual(
      names(out),
      [
        '@angular/core@16.0.0',
        'demo@1.0',
        'django@4.2.0',
        'express@4.18.2',
        'flask@3.0.0',
        'g:a@1',
        'github.com/pkg/errors@v0.9.1',
        'golang.org/x/text@v0.3.7',
        'jinja2@3.1.2',
        'left-pad@1.3.0',
        'log4j:log4j-core@2.14.1',
        'monolog/monolog@2.9.1',
        'org.example:app@1.0',
        'org.example:inner@0.9',
        'rails@7.0.4',
        'requests@2.31.0',
        'serde@1.0.190',
        'urllib3@2.0.7',
      ].sort(),
    );
    const inner09 = out.packages.find((p) => p.name === 'org.example:inner');
    assert.equal(
      inner09?.path,
      'app.tar!/app/lib/app.jar!/BOOT-INF/lib/inner.jar!/META-INF/maven/org.example/inner/pom.properties',
    );
  });

  void it('applies OCI layer whiteouts in a docker-save image tarball', async () => {
    const layer1 = makeTar([
      { name: 'app/node_modules/old/package.json', data: '{}' },
      { name: 'app/package-lock.json', data: LOCK },
      { name: 'srv/requirements.txt', data: 'django==3.0.0\n' },
    ]);
    const layer2 = makeTar([
      { name: 'app/.wh.package-lock.json', data: '' },
      { name: 'srv/.wh..wh..opq', data: '' },
      { name: 'srv/requirements.txt', data: 'django==4.2.1\n' },
    ]);
    const image = makeTar([
      { name: 'l1/layer.tar', data: layer1 },
      { name: `blobs/sha256/${'b'.repeat(64)}`, data: gzipSync(layer2) },
      {
        name: 'manifest.json',
        data: JSON.stringify([
          { Config: 'c.json', Layers: ['l1/layer.tar', `blobs/sha256/${'b'.repeat(64)}`] },
        ]),
      },
    ]);
    const out = await scanner().scan(target('image.tar', image));
    assert.deepEqual(names(out), ['django@4.2.1']);
  });

  void it('stops archive bombs: expansion ratio, total size, entry count and nesting depth', async () => {
    const zeros = makeZip([{ name: 'bomb/package-lock.json', data: Buffer.alloc(50 * 1024 * 1024) }]);
    const ratio = await scanner().scan(target('bomb.zip', zeros));
    assert.equal(ratio.problems[0]?.code, 'GW_ERR_ARTIFACTS_ARCHIVE_LIMIT');
    assert.match(ratio.problems[0]?.message ?? '', /expands more than 200 times/);
    const total = await scanner({ maxExpandedSize: 1000 }).scan(
      target('big.tgz', makeTgz([{ name: 'a.bin', data: Buffer.alloc(5000, 1) }])),
    );
    assert.match(total.problems[0]?.message ?? '', /expands beyond 1000 bytes/);
    const many = makeTar(Array.from({ length: 50 }, (_, i) => ({ name: `f${i}`, data: 'x' })));
    assert.match(
      (await scanner({ maxEntries: 20 }).scan(target('many.tar', many))).problems[0]?.message ?? '',
      /more than 20 entries/,
    );
    let nested = makeZip([{ name: 'go.mod', data: 'module x\nrequire a.b/c v1.0.0\n' }]);
    for (let i = 0; i < 7; i += 1) nested = makeZip([{ name: `level${i}.zip`, data: nested }]);
    assert.match(
      (await scanner({ maxDepth: 5 }).scan(target('deep.zip', nested))).problems[0]?.message ?? '',
      /nest deeper than 5/,
    );
    assert.deepEqual(names(await scanner({ maxDepth: 10 }).scan(target('deep.zip', nested))), [
      'a.b/c@v1.0.0',
    ]);
  });

  void it('reports path traversal names, malformed manifests and corrupt archives without crashing', async () => {
    const evil = makeTar([
      { name: '../../etc/cron.d/evil', data: 'x' },
      { name: 'ok/package-lock.json', data: '{not json' },
      { name: 'ok/Cargo.lock', data: '[[package]]\nname = "x"\n' },
      { name: 'ok/go.mod', data: 'require a.b/c v1.0.0\n' },
    ]);
    const out = await scanner().scan(target('evil.tar', evil));
    assert.deepEqual(out.problems.map((p) => p.code).sort(), [
      'GW_ERR_ARTIFACTS_ARCHIVE_INVALID',
      'GW_ERR_ARTIFACTS_MANIFEST_INVALID',
      'GW_ERR_ARTIFACTS_MANIFEST_INVALID',
    ]);
    assert.deepEqual(names(out), ['a.b/c@v1.0.0']);
    const truncated = makeTgz([{ name: 'go.mod', data: 'x'.repeat(5000) }]).subarray(0, 40);
    assert.equal(
      (await scanner().scan(target('cut.tgz', truncated))).problems[0]?.code,
      'GW_ERR_ARTIFACTS_ARCHIVE_INVALID',
    );
    const badZip = Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(100)]);
    assert.equal(
      (await scanner().scan(target('bad.zip', badZip))).problems[0]?.code,
      'GW_ERR_ARTIFACTS_ARCHIVE_INVALID',
    );
  });

  void it('matches packages against core/vulndb and writes Trivy JSON and CycloneDX with the database age', async () => {
    const osv = await vulndbWith(
      [osvRecord('GHSA-0001-0001-0001', 'npm', 'lodash', '0', '4.17.21', CRITICAL)],
      () => Date.parse('2024-05-31T00:00:00Z'),
    );
    try {
      const out = await scanner({}, osv.vulndb).scan(
        target('app.tgz', makeTgz([{ name: 'package-lock.json', data: LOCK }])),
      );
      assert.deepEqual(
        out.findings.map((f) => `${f.advisory.id}:${f.pkg.name}:${f.advisory.severity}`),
        ['GHSA-0001-0001-0001:lodash:critical'],
      );
      const report = out.report as {
        SchemaVersion: number;
        Metadata: { DatabaseAgeSeconds: number };
        Results: { Type: string; Vulnerabilities: { VulnerabilityID: string; Severity: string }[] }[];
      };
      assert.equal(report.SchemaVersion, 2);
      assert.equal(report.Metadata.DatabaseAgeSeconds, 86_400);
      assert.equal(report.Results[0]?.Type, 'npm');
      assert.equal(report.Results[0]?.Vulnerabilities[0]?.Severity, 'CRITICAL');
      const sbom = out.sbom as {
        bomFormat: string;
        components: { purl: string }[];
        vulnerabilities: { id: string }[];
      };
      assert.equal(sbom.bomFormat, 'CycloneDX');
      assert.ok(sbom.components.some((c) => c.purl === 'pkg:npm/lodash@4.17.20'));
      assert.equal(sbom.vulnerabilities[0]?.id, 'GHSA-0001-0001-0001');
    } finally {
      await osv.close();
    }
  });
});
