import type { ArtifactContext } from '../context.ts';
import type { ArtifactTables, ItemRow } from '../store/schema.ts';
import { parseBundle, type SigstoreBundle } from './bundle.ts';
import { type CompiledTrust, compileTrust, evaluateTrust, type TrustVerdict } from './trust.ts';

/** The trust policy checked before downloads, with verdicts cached per digest and policy version. */
export interface TrustService {
  /** The verdict for an artifact; computed verdicts are audited, cached ones are not recomputed. */
  check(item: ItemRow, actor: string): Promise<TrustVerdict & { readonly cached: boolean }>;
  /** Drops cached verdicts of a digest (a signature was added or removed). */
  forget(digest: string): void;
  /** Signature bundles that count for a digest in a repository (see signaturesOf). */
  bundles(digest: string, repository: string): Promise<SigstoreBundle[]>;
  readonly version: () => string;
}

/**
 * The signatures that count for `digest` in `repository`: those added to an artifact of that
 * repository (and unscoped ones from before migration 0003). The store keeps a digest's bytes
 * once for every repository, but a signature is a publisher's statement in one repository: one
 * from another repository would let its publishers vouch for (or, listed, reveal) this one.
 */
export function signaturesOf(ctx: ArtifactContext, digest: string, repository: string) {
  return ctx.db
    .kysely<ArtifactTables>()
    .selectFrom('artifacts_signatures')
    .where('digest', '=', digest)
    .where((eb) => eb.or([eb('repository', '=', repository), eb('repository', 'is', null)]));
}

/** Creates the service; a policy that does not compile keeps the previous one (logged, audited). */
export function createTrustService(ctx: ArtifactContext): TrustService {
  let compiled: CompiledTrust = compileTrust(ctx.config().trust);
  // Each verdict keeps the stamp of the signature set it was computed from (see stampOf).
  const cache = new Map<string, TrustVerdict & { readonly stamp: string }>();
  const current = (): CompiledTrust => {
    const policy = ctx.config().trust;
    if (policy === compiled.policy) return compiled;
    try {
      compiled = compileTrust(policy);
      cache.clear();
    } catch (error) {
      ctx.log.error('Trust policy rejected; the previous one stays', { error });
      void ctx.audit({
        actor: 'system',
        action: 'artifacts.trust.reload',
        resource: 'trust',
        decision: 'error',
        reason: String((error as Error).message),
      });
    }
    return compiled;
  };
  /** The stored signatures of a digest in a repository, and their stamp (see stampOf). */
  const stored = async (
    digest: string,
    repository: string,
  ): Promise<{ readonly bundles: SigstoreBundle[]; readonly stamp: string }> => {
    const rows = await signaturesOf(ctx, digest, repository)
      .select(['bundle', 'created_at'])
      .orderBy('created_at')
      .execute();
    // A row stored before parseBundle checked what it checks now cannot vouch for anything,
    // but must not fail the check (and with it every download) either.
    const bundles = rows.flatMap((r) => {
      try {
        return [parseBundle(JSON.parse(r.bundle))];
      } catch (error) {
        ctx.log.warn('stored signature bundle is not valid; ignored', { error, digest });
        return [];
      }
    });
    // The newest time as stampOf prints it (an integer, whether the driver answers number or string).
    return { bundles, stamp: `${rows.length}:${rows.at(-1)?.created_at ?? 0}` };
  };
  const bundles = async (digest: string, repository: string) => (await stored(digest, repository)).bundles;
  /**
   * What the stored signatures of a digest in a repository are now, cheaply: their count and
   * newest time. Another replica adds and deletes signatures too, and its forget() does not
   * reach this one's cache: a verdict is reused only while the set it was computed from stands
   * (an unsigned artifact was refused for ten minutes after it was signed elsewhere).
   */
  const stampOf = async (digest: string, repository: string): Promise<string> => {
    const row = await signaturesOf(ctx, digest, repository)
      // PostgreSQL answers bigint aggregates as strings.
      .select((eb) => [
        eb.fn.countAll<number | string>().as('n'),
        eb.fn.max<number | string | null>('created_at').as('last'),
      ])
      .executeTakeFirst();
    return `${Number(row?.n ?? 0)}:${Number(row?.last ?? 0)}`;
  };
  return {
    async check(item, actor) {
      const trust = current();
      const off = trust.policy.mode === 'off';
      // The digest leads the key: forget(digest) drops every repository's verdict at once.
      const key = `${item.digest}:${item.repository}:${trust.version}`;
      const now = ctx.clock.now();
      const hit = cache.get(key);
      // A cached verdict costs one aggregate query; computing one reads the signatures once.
      if (
        hit !== undefined &&
        hit.validUntil > now &&
        hit.stamp === (off ? '' : await stampOf(item.digest, item.repository))
      ) {
        const { stamp: _stamp, ...cached } = hit;
        return { ...cached, cached: true };
      }
      const signatures = off ? { bundles: [], stamp: '' } : await stored(item.digest, item.repository);
      const verdict = evaluateTrust(trust, item.digest, signatures.bundles, now);
      cache.set(key, { ...verdict, stamp: signatures.stamp });
      if (cache.size > 10_000) cache.delete(cache.keys().next().value as string);
      ctx.metrics.signatureChecks.inc({ result: verdict.trusted ? 'trusted' : 'untrusted' });
      await ctx.audit({
        actor,
        action: 'artifacts.signature.check',
        resource: `artifact:${item.repository}/${item.name}@${item.version}#${item.id}`,
        decision: verdict.trusted ? 'allow' : 'deny',
        reason: verdict.reasons.join('; '),
        details: {
          policyVersion: verdict.policyVersion,
          signer: verdict.signer ?? null,
          sha256: item.digest,
        },
      });
      return { ...verdict, cached: false };
    },
    forget(digest) {
      for (const key of cache.keys()) if (key.startsWith(`${digest}:`)) cache.delete(key);
    },
    bundles,
    version: () => current().version,
  };
}
