import { randomUUID } from 'node:crypto';
import type { FoundPackage } from './manifests.ts';
import { purlOf } from './manifests.ts';
import type { Finding, ScanTarget } from './port.ts';
import type { ScanProblem } from './walker.ts';

const TRIVY_TYPES: Record<string, string> = {
  'package-lock.json': 'npm',
  'npm-shrinkwrap.json': 'npm',
  'package.json': 'node-pkg',
  'yarn.lock': 'yarn',
  'pnpm-lock.yaml': 'pnpm',
  'requirements.txt': 'pip',
  'poetry.lock': 'poetry',
  'Pipfile.lock': 'pipenv',
  METADATA: 'python-pkg',
  'PKG-INFO': 'python-pkg',
  'go.mod': 'gomod',
  'go.sum': 'gomod',
  'pom.xml': 'pom',
  'pom.properties': 'jar',
  'Cargo.lock': 'cargo',
  'Gemfile.lock': 'bundler',
  'composer.lock': 'composer',
};

function typeOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  return TRIVY_TYPES[base] ?? (base.endsWith('.json') ? 'sbom' : 'unknown');
}

/** Builds the report in Trivy's JSON shape (one Result per manifest). */
export function trivyReport(
  target: Pick<ScanTarget, 'fileName' | 'sha256' | 'size'>,
  packages: readonly FoundPackage[],
  findings: readonly Finding[],
  problems: readonly ScanProblem[],
  now: number,
  databaseUpdatedAt: number | undefined,
): Record<string, unknown> {
  const byPath = new Map<string, FoundPackage[]>();
  for (const p of packages) byPath.set(p.path, [...(byPath.get(p.path) ?? []), p]);
  const results = [...byPath.entries()].map(([path, list]) => ({
    Target: path,
    Class: 'lang-pkgs',
    Type: typeOf(path),
    Packages: list.map((p) => ({ Name: p.name, Version: p.version, Identifier: { PURL: purlOf(p) } })),
    Vulnerabilities: findings
      .filter((f) => f.pkg.path === path)
      .map((f) => ({
        VulnerabilityID: f.advisory.id,
        PkgName: f.pkg.name,
        InstalledVersion: f.pkg.version,
        Severity: f.advisory.severity.toUpperCase(),
        Title: f.advisory.summary,
        ...(f.advisory.score === undefined
          ? {}
          : { CVSS: { nvd: { V3Score: f.advisory.score, V3Vector: f.advisory.vectors[0] } } }),
        References: f.advisory.aliases,
      })),
  }));
  return {
    SchemaVersion: 2,
    CreatedAt: new Date(now).toISOString(),
    ArtifactName: target.fileName,
    ArtifactType: 'filesystem',
    Metadata: {
      ImageConfig: {},
      RepoDigests: [`sha256:${target.sha256}`],
      Size: target.size,
      ...(databaseUpdatedAt === undefined
        ? { DatabaseUpdatedAt: null, DatabaseAgeSeconds: null }
        : {
            DatabaseUpdatedAt: new Date(databaseUpdatedAt).toISOString(),
            DatabaseAgeSeconds: Math.round((now - databaseUpdatedAt) / 1000),
          }),
    },
    Results: results,
    Problems: problems.map((p) => ({ Target: p.path, Code: p.code, Message: p.message })),
  };
}

/** Builds a CycloneDX 1.5 JSON SBOM of the found packages and their vulnerabilities. */
export function cycloneDxSbom(
  target: Pick<ScanTarget, 'name' | 'version' | 'sha256'>,
  packages: readonly FoundPackage[],
  findings: readonly Finding[],
  now: number,
): Record<string, unknown> {
  const unique = new Map(packages.map((p) => [purlOf(p), p]));
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: {
      timestamp: new Date(now).toISOString(),
      tools: { components: [{ type: 'application', name: 'gatehouse' }] },
      component: {
        type: 'file',
        'bom-ref': `artifact:${target.sha256}`,
        name: target.name,
        version: target.version,
        hashes: [{ alg: 'SHA-256', content: target.sha256 }],
      },
    },
    components: [...unique.entries()].map(([purl, p]) => ({
      type: 'library',
      'bom-ref': purl,
      name: p.name,
      version: p.version,
      purl,
    })),
    vulnerabilities: findings.map((f) => ({
      id: f.advisory.id,
      source: { name: 'OSV' },
      ratings: [
        {
          severity: f.advisory.severity,
          ...(f.advisory.score === undefined ? {} : { score: f.advisory.score, method: 'CVSSv3' }),
        },
      ],
      description: f.advisory.summary,
      affects: [{ ref: purlOf(f.pkg) }],
    })),
  };
}
