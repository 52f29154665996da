import { object, oneOf } from '#core/config';

/** The `log` section. */
export const logConfigSchema = object(
  {
    level: oneOf(['debug', 'info', 'warn', 'error', 'silent'] as const, 'Lowest level written to stderr', {
      default: 'info',
    }),
    format: oneOf(
      ['json', 'pretty'] as const,
      '`json` (one object per line) for machines, `pretty` for people',
      {
        default: 'json',
      },
    ),
  },
  'Structured logging to stderr',
);
