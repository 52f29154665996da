/**
 * core/app: the App lifecycle, CoreServices, the clock, readiness checks, the app runner and
 * the process signal handlers.
 * @module
 */
export {
  type App,
  type Clock,
  type ConfigSection,
  type CoreServices,
  type HealthRegistry,
  type HealthStatus,
  type LimiterFactory,
  systemClock,
} from './app.ts';
/** ConfigSection helpers: a fixed value, or a selected part of a reloadable store. */
export { type SectionSource, selectSection, staticSection } from './config-section.ts';
/** The readiness registry behind `/readyz` and `/api/health`. */
export { createHealthRegistry, type HealthRegistryOptions } from './health.ts';
/** Provisions, validates and starts apps in order; stops them in reverse with a deadline. */
export { type AppRunner, type RunOptions, runApps } from './runner.ts';
/** SIGTERM/SIGINT drain-and-exit and SIGHUP reload. */
export { installSignalHandlers, type SignalHandlerOptions, type SignalTarget } from './signals.ts';
/** Adapters: a readiness check from a ping, and an App around a listener such as the HTTP server. */
export { type Listener, listenerApp, pingCheck } from './adapters.ts';
