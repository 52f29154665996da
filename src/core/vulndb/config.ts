import { boolean, duration, type Infer, object, optional, string } from '#core/config';

/** The vulnerability database section. */
export const vulndbConfigSchema = object(
  {
    maxAge: optional(
      duration(
        'When the last import is older than this, the database counts as unavailable (rules apply their fail mode)',
      ),
    ),
    online: object(
      {
        enabled: boolean(
          'Ask an online OSV-compatible service (querybatch) in addition to the local database',
          {
            default: false,
          },
        ),
        url: optional(
          string('Base URL of the OSV-compatible API; required when `online.enabled` is true', {
            pattern: /^https?:\/\/[^\s]+$/,
            format: 'an http(s) URL',
          }),
        ),
        timeout: duration('Deadline of one request to the service', { default: '5s', min: 100 }),
        cacheTtl: duration('How long answers of the service are reused', { default: '1h' }),
      },
      'The optional online OSV client',
    ),
  },
  'Vulnerability database (OSV)',
);

export type VulndbConfig = Infer<typeof vulndbConfigSchema>;
