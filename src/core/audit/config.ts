import { type Infer, integer, object, string } from '#core/config';

/** The `audit` section. */
export const auditConfigSchema = object(
  {
    file: string('JSONL copy of the audit trail, relative to the data folder unless absolute', {
      default: 'audit.jsonl',
      minLength: 1,
    }),
    maxPageSize: integer('Most events one query of /api/audit-logs returns', {
      default: 500,
      min: 1,
      max: 10_000,
    }),
  },
  'Audit trail: hash-chained events in the database and a JSONL file',
);

/** Parsed `audit` section. */
export type AuditConfig = Infer<typeof auditConfigSchema>;
