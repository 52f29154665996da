import type { Ecosystem } from '#core/policy';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * One ecosystem served by the registry door (npm and PyPI now; Go, Maven and OCI slot in the
 * same way). A handler registers its routes inside its own Fastify scope under `prefix`, with
 * an error handler that answers in the form its clients display.
 */
export interface EcosystemHandler {
  readonly ecosystem: Ecosystem;
  /** URL prefix, e.g. `/npm`. */
  readonly prefix: string;
  /** Registers routes, error and not-found handlers in the given (prefixed) scope. */
  register(scope: FastifyInstance): void;
  /** Facts of one version (its registry and publication time) for `policy test`; undefined when unknown. */
  lookup(
    name: string,
    version: string,
    request: FastifyRequest,
  ): Promise<{ readonly registry: string; readonly publishedAt?: number } | undefined>;
  /** Drops cached metadata of one package, or of the whole ecosystem; returns entries removed here. */
  invalidate(name?: string): Promise<number>;
  close(): Promise<void>;
}
