import type { Ecosystem, PolicySubject } from '#core/policy';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * What `lookup` learns of one version: the subject's facts besides its name, and the version's
 * canonical form when the door decides another spelling of it (PEP 440 normalized for PyPI).
 */
export type LookupFacts = Partial<Pick<PolicySubject, 'version'>> &
  Pick<PolicySubject, 'publishedAt' | 'digest' | 'aliases' | 'unresolvedAliases'> & {
    readonly registry: string;
  };

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
  /**
   * Facts of one version for `policy test`, as a request for it would be decided: its registry
   * and publication time, and where it has them its digest and the other names it goes by (OCI:
   * the tags pointing at the manifest, the named tags that could not be resolved). Undefined
   * when unknown.
   */
  lookup(name: string, version: string, request: FastifyRequest): Promise<LookupFacts | undefined>;
  /** Drops cached metadata of one package, or of the whole ecosystem; returns entries removed here. */
  invalidate(name?: string): Promise<number>;
  close(): Promise<void>;
}
