/**
 * core/log: structured JSON logging. Import from `#core/log` only.
 * @module
 */
export {
  createLogger,
  LOG_LEVELS,
  type LogFields,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  silentLogger,
} from './logger.ts';
export { logConfigSchema } from './schema.ts';
