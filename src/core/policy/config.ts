import { array, boolean, duration, type Infer, object, oneOf, optional, record, string } from '#core/config';
import { ECOSYSTEMS } from './types.ts';

const ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const listEntrySchema = object(
  {
    name: string('Package name pattern; `*` matches any run of characters, e.g. `@corp/*` or `internal-*`', {
      minLength: 1,
    }),
    versions: optional(
      string(
        'Versions in the ecosystem syntax (npm range, PEP 440 specifier, or an `a|b` list of exact Go versions, Maven or artifact versions, OCI tags or digests); absent means all',
      ),
    ),
    ecosystem: optional(
      oneOf(
        ECOSYSTEMS,
        "Only for this ecosystem; absent means each of the rule's ecosystems in whose syntax `versions` is valid (a configuration error when it is valid in none)",
      ),
    ),
    reason: optional(string('Why the entry exists; shown in decisions')),
  },
  'One allow- or deny-list entry',
);

const advisoryAllowSchema = object(
  {
    id: string('Advisory id or alias (GHSA-…, CVE-…, PYSEC-…) that is accepted', { minLength: 1 }),
    reason: string('Why the risk is accepted; recorded with every decision it affects', { minLength: 1 }),
    expires: optional(
      string('ISO 8601 date or time after which the exception no longer applies', {
        pattern: /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?$/,
        format: 'an ISO 8601 date such as "2026-12-31"',
      }),
    ),
  },
  'An accepted advisory',
);

/** One configured rule. Only the section named by `type` is used. */
export const ruleConfigSchema = object(
  {
    id: string('Unique rule id, used in decisions, overrides and exclusions', {
      pattern: ID_PATTERN,
      format: 'a lower-case id such as "min-age"',
    }),
    type: oneOf(['minimumAge', 'vulnerability', 'allowList', 'denyList'], 'The built-in rule kind'),
    name: optional(string('Display name; defaults to the kind')),
    enabled: boolean('Whether the rule runs', { default: true }),
    group: optional(
      string('Rules sharing a group are combined with OR (one allow is enough); ungrouped rules are AND-ed'),
    ),
    ecosystems: array(oneOf(ECOSYSTEMS, 'An ecosystem'), 'Ecosystems the rule applies to; empty means all', {
      default: [],
    }),
    onError: oneOf(['allow', 'deny', 'warn'], 'What the rule counts as when it throws (its failure mode)', {
      default: 'deny',
    }),
    minimumAge: object(
      {
        age: duration('Versions younger than this are refused', { default: '2d' }),
        exclude: array(
          string('Package name pattern'),
          'Packages exempt from the age rule (wildcards allowed)',
          {
            default: [],
          },
        ),
        missingTimestamp: oneOf(['allow', 'deny'], 'Decision for a version without a publication time', {
          default: 'deny',
        }),
        allowVulnerabilityFixes: boolean(
          'Let a too-young version through when it fixes a known vulnerability of an earlier version',
          { default: true },
        ),
      },
      'Settings of a minimumAge rule',
    ),
    vulnerability: object(
      {
        threshold: oneOf(
          ['low', 'medium', 'high', 'critical'],
          'Refuse versions with an advisory at or above this severity',
          {
            default: 'high',
          },
        ),
        unknownSeverity: oneOf(['allow', 'warn', 'deny'], 'Decision for an advisory without a severity', {
          default: 'warn',
        }),
        allow: array(advisoryAllowSchema, 'Accepted advisories with reason and optional expiry', {
          default: [],
        }),
        whenUnavailable: oneOf(
          ['open', 'closed'],
          'When the database is unavailable or empty: open allows with a warning, closed refuses',
          { default: 'open' },
        ),
      },
      'Settings of a vulnerability rule',
    ),
    list: object(
      {
        entries: array(listEntrySchema, 'Entries of an allowList or denyList rule', { default: [] }),
        mode: oneOf(
          ['exempt', 'only'],
          'allowList only: `exempt` lets listed packages bypass every other rule; `only` refuses everything not listed',
          { default: 'exempt' },
        ),
      },
      'Settings of an allowList or denyList rule',
    ),
  },
  'A policy rule',
);

const registryOverrideSchema = object(
  {
    exclude: array(string('Rule id'), 'Global rules that do not run for this registry', { default: [] }),
    rules: array(ruleConfigSchema, 'Rules for this registry; one with the id of a global rule replaces it', {
      default: [],
    }),
  },
  'Overrides for one registry',
);

/** The policy section: ordered global rules plus per-registry overrides; reloads swap the engine. */
export const policyConfigSchema = object(
  {
    rules: array(ruleConfigSchema, 'Global rules, evaluated in this order', {
      default: [
        { id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } },
        { id: 'vulnerabilities', type: 'vulnerability', vulnerability: { whenUnavailable: 'open' } },
      ],
    }),
    registries: record(registryOverrideSchema, 'Per-registry overrides, keyed by registry (uplink) name', {
      default: {},
    }),
  },
  { description: 'Policy rules applied before a package version is served', dynamic: true },
);

export type PolicyConfig = Infer<typeof policyConfigSchema>;
export type RuleConfig = Infer<typeof ruleConfigSchema>;
