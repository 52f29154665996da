/**
 * core/vulndb: the vulnerability database. OSV records, range evaluation with the npm semver,
 * PEP 440, Go and Maven comparators, CVSS parsing, the store, the OSV ZIP/directory importer and the
 * optional online OSV client.
 * @module
 */

/** CVSS vectors, base scores and the qualitative severity scale. */
export {
  compareSeverity,
  type CvssVector,
  parseCvss,
  parseSeverityLabel,
  roundUp,
  SEVERITIES,
  type Severity,
  severityOfScore,
} from './cvss.ts';
/** The OSV schema and range evaluation per the OSV specification. */
export {
  type AdvisorySummary,
  affectedEntryMatches,
  asOsvRecord,
  fixedVersions,
  normalizePackageName,
  OSV_ECOSYSTEMS,
  type OsvAffected,
  type OsvEvent,
  type OsvRange,
  type OsvRecord,
  type OsvSeverity,
  rangeAffects,
  schemeFor,
  summarizeAdvisory,
  type VersionScheme,
} from './osv.ts';
/** PEP 440 versions and specifiers, PEP 503 names. */
export {
  comparePep440,
  comparePep440Parsed,
  formatPep440,
  isPep440Prerelease,
  normalizePypiName,
  type Pep440Specifier,
  type Pep440Version,
  parsePep440,
  parsePep440Specifier,
  satisfiesPep440,
} from './versions/pep440.ts';
/** npm semver versions and node-semver ranges. */
export {
  compareSemver,
  compareSemverParsed,
  formatSemver,
  parseSemver,
  parseSemverRange,
  type SemVer,
  type SemverRange,
  satisfiesSemver,
} from './versions/semver.ts';
/** Go module versions: canonical semver with `v`, pseudo-versions and `+incompatible`. */
export {
  compareGo,
  compareGoParsed,
  type GoVersion,
  goPseudoVersionTime,
  isCanonicalGoVersion,
  isGoPrerelease,
  isGoPseudoVersion,
  parseGoVersion,
} from './versions/go.ts';
/** Maven versions ordered as Maven's ComparableVersion orders them. */
export {
  compareMaven,
  compareMavenParsed,
  isMavenPrerelease,
  type MavenItem,
  type MavenVersion,
  parseMavenVersion,
} from './versions/maven.ts';
/** The vulnerability database section of the configuration. */
export { type VulndbConfig, vulndbConfigSchema } from './config.ts';
/** The database service: import, status and per-package advisories for policy. */
export {
  type PackageAdvisories,
  VulnerabilityDatabase,
  type VulnerabilityDatabaseOptions,
  type VulndbStatus,
} from './database.ts';
/** Import of OSV exports (ZIP or directory), incremental by `modified`. */
export { type ImportOptions, type ImportStats, importOsv } from './import.ts';
/** The online OSV querybatch client. */
export { OsvClient, type OsvClientOptions } from './online.ts';
/** Tables and migrations. */
export { META, type UpsertResult, VULNDB_MIGRATIONS, VulndbStore, type VulndbTables } from './store.ts';
/** The streaming ZIP reader. */
export { listZip, readZip, readZipEntry, type ZipEntry } from './zip.ts';
