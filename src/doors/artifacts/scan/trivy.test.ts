import assert from 'node:assert/strict';
import { it } from 'node:test';
import { fromTrivyReport, trivyAvailable } from './trivy.ts';

void it('maps a report in Trivy JSON shape to packages and findings', () => {
  // The documented SchemaVersion 2 layout: Results[].Packages with PURL identifiers and
  // Results[].Vulnerabilities naming the package and installed version.
  const report = {
    SchemaVersion: 2,
    Results: [
      {
        Target: 'app/package-lock.json',
        Class: 'lang-pkgs',
        Type: 'npm',
        Packages: [{ Name: 'lodash', Version: '4.17.20', Identifier: { PURL: 'pkg:npm/lodash@4.17.20' } }],
        Vulnerabilities: [
          {
            VulnerabilityID: 'CVE-2021-23337',
            PkgName: 'lodash',
            InstalledVersion: '4.17.20',
            Severity: 'HIGH',
            Title: 'Command injection',
          },
        ],
      },
    ],
  };
  const { packages, findings } = fromTrivyReport(report);
  assert.deepEqual(packages, [
    { ecosystem: 'npm', name: 'lodash', version: '4.17.20', path: 'app/package-lock.json' },
  ]);
  assert.equal(findings[0]?.advisory.severity, 'high');
  assert.equal(findings[0]?.pkg, packages[0]);
  assert.equal(typeof trivyAvailable(), 'boolean');
});
