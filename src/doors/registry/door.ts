import { join } from 'node:path';
import type { App, ConfigSection, CoreServices } from '#core/app';
import { createPolicyService, type PolicyService } from '#core/policy';
import { VulnerabilityDatabase } from '#core/vulndb';
import { registerAdminRoutes } from './admin.ts';
import { parseVerifierKey } from './go/tlog.ts';
import { registerOciLogin } from './oci/login.ts';
import { BlobCache } from './cache/blob-cache.ts';
import { MetadataCache } from './cache/metadata-cache.ts';
import { type RegistryConfig, type UplinkConfig, checksumDbUplink } from './config.ts';
import { audit, type RegistryContext } from './context.ts';
import { discoverNpmRegistry } from './discover.ts';
import type { EcosystemHandler } from './ecosystems/handler.ts';
import { createGoHandler } from './ecosystems/go.ts';
import { createMavenHandler } from './ecosystems/maven.ts';
import { createNpmHandler } from './ecosystems/npm.ts';
import { createOciHandler } from './ecosystems/oci.ts';
import { createPypiHandler } from './ecosystems/pypi.ts';
import { createRegistryMetrics } from './metrics.ts';
import { OciUplinkClient } from './oci/client.ts';
import { BREAKER_GAUGE } from './uplink/breaker.ts';
import { UplinkClient } from './uplink/client.ts';
import { uplinkSchema } from './config.ts';

function policySection(section: ConfigSection<RegistryConfig>): ConfigSection<RegistryConfig['policy']> {
  return {
    current: () => section.current().policy,
    subscribe: (listener) =>
      section.subscribe((next, previous) => {
        if (next.policy !== previous.policy) listener(next.policy, previous.policy);
      }),
    ...(section.vet === undefined
      ? {}
      : { vet: (check, path) => section.vet?.((next) => check(next.policy), path) ?? (() => {}) }),
  };
}

async function npmUplinks(config: RegistryConfig): Promise<readonly UplinkConfig[]> {
  if (config.npm.uplinks.length > 0) return config.npm.uplinks;
  const url = await discoverNpmRegistry();
  // Built through the schema so that the discovered uplink gets every default a configured one has.
  const parsed = uplinkSchema.parse(
    { name: 'npm', url },
    { path: 'registry.npm.uplinks[0]', issues: [], fromText: false },
  );
  if (typeof parsed === 'symbol')
    throw new TypeError(`The discovered npm registry "${url}" is not a valid uplink URL`);
  return [parsed];
}

/** The registry door: npm at `/npm/`, PyPI at `/pypi/`, admin API under `/api/registry/`. */
export function createRegistryDoor(
  _core: CoreServices,
  section: ConfigSection<RegistryConfig>,
): App & {
  readonly vulndb: () => VulnerabilityDatabase;
  readonly policy: () => PolicyService;
  /** Drops cached metadata of one package, an ecosystem, or everything; returns entries removed here. */
  readonly invalidate: (ecosystem?: string, name?: string) => Promise<number>;
} {
  let vulndb: VulnerabilityDatabase | undefined;
  let policy: PolicyService | undefined;
  const handlers: EcosystemHandler[] = [];
  const clients: UplinkClient[] = [];
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('The registry door is not provisioned');
    return v;
  };

  return {
    name: 'registry',
    vulndb: () => need(vulndb),
    policy: () => need(policy),
    async invalidate(ecosystem, name) {
      let removed = 0;
      for (const h of handlers)
        if (ecosystem === undefined || h.ecosystem === ecosystem) removed += await h.invalidate(name);
      return removed;
    },
    async provision(core) {
      const config = section.current();
      if (!config.enabled) return;
      const log = core.log.child({ door: 'registry' });
      vulndb = new VulnerabilityDatabase({ db: core.db, clock: core.clock, config: config.vulndb });
      await vulndb.migrate();
      const db = vulndb;
      const metrics = createRegistryMetrics(core.metrics);
      policy = createPolicyService(policySection(section), {
        configPath: 'registry.policy',
        clock: core.clock,
        vulnerabilities: {
          forPackage: (eco, name, signal) => db.forPackage(eco, name, signal),
          generation: () => db.generation(),
        },
        onError: (error) => {
          log.error('Policy reload rejected; the previous policy stays', { error });
          void core.audit.record({
            actor: 'system',
            action: 'registry.policy.reload',
            resource: 'policy',
            decision: 'error',
            reason: error.message,
          });
        },
      });
      policy.onSwap((next, previous) => {
        log.info('Policy swapped', { from: previous.version, to: next.version });
        void core.audit.record({
          actor: 'system',
          action: 'registry.policy.reload',
          resource: 'policy',
          decision: 'info',
          details: { from: previous.version, to: next.version },
        });
      });
      const ctx: RegistryContext = {
        core,
        log,
        clock: core.clock,
        config: () => section.current(),
        policy,
        metrics,
        metadata: new MetadataCache(core.cache),
        blobs: new BlobCache(config.cache.tarballDir ?? join(core.dataDir, 'registry', 'blobs')),
      };
      const makeClient = (c: UplinkConfig, Make: typeof UplinkClient) => {
        const u = new Make({
          config: c,
          clock: core.clock,
          latency: metrics.uplinkLatency,
          onBreakerChange: (name, state) => {
            metrics.breaker.set({ uplink: name }, BREAKER_GAUGE[state]);
            audit(ctx, {
              actor: 'system',
              action: 'registry.uplink.breaker',
              resource: `uplink:${name}`,
              decision: 'info',
              reason: `Circuit breaker ${state}`,
            });
          },
        });
        clients.push(u);
        return u;
      };
      const client = (c: UplinkConfig) => makeClient(c, UplinkClient);
      if (config.npm.enabled) handlers.push(createNpmHandler(ctx, (await npmUplinks(config)).map(client)));
      if (config.pypi.enabled && config.pypi.uplinks.length > 0)
        handlers.push(createPypiHandler(ctx, config.pypi.uplinks.map(client)));
      if (config.go.enabled && config.go.uplinks.length > 0) {
        const sums =
          config.go.checksumDb === undefined ? undefined : client(checksumDbUplink(config.go.checksumDb));
        const key =
          config.go.checksumDbKey === undefined ? undefined : parseVerifierKey(config.go.checksumDbKey);
        handlers.push(createGoHandler(ctx, config.go.uplinks.map(client), sums, key));
      }
      if (config.maven.enabled && config.maven.uplinks.length > 0)
        handlers.push(createMavenHandler(ctx, config.maven.uplinks.map(client)));
      if (config.oci.enabled && config.oci.uplinks.length > 0)
        handlers.push(
          createOciHandler(
            ctx,
            config.oci.uplinks.map((c) => makeClient(c, OciUplinkClient)),
          ),
        );
      const auth = config.auth === 'required' ? core.http.requirePermission('registry:pull') : undefined;
      for (const h of handlers) {
        await core.http.app.register(
          async (scope) => {
            if (auth !== undefined) scope.addHook('preHandler', auth);
            h.register(scope);
          },
          { prefix: h.prefix },
        );
      }
      registerAdminRoutes(core.http.app, core, ctx, handlers, db);
      if (auth !== undefined && handlers.some((h) => h.ecosystem === 'oci'))
        registerOciLogin(core.http.app, core, ctx);
      core.health.register('door:registry', async () => {
        const open = clients.filter((c) => c.breakerState === 'open').map((c) => c.name);
        return open.length === 0 ? { ok: true } : { ok: true, detail: `breaker open: ${open.join(', ')}` };
      });
    },
    async validate() {
      const config = section.current();
      if (!config.enabled) return;
      if (config.pypi.enabled && config.pypi.uplinks.length === 0 && config.pypi.uplinks !== undefined) {
        // PyPI without an uplink is simply not served; nothing to check.
      }
      need(policy).current();
    },
    async start() {},
    async stop() {
      await Promise.all(handlers.map((h) => h.close()));
      await Promise.all(clients.map((c) => c.close()));
    },
    async [Symbol.asyncDispose]() {
      policy?.[Symbol.dispose]();
      await this.stop(AbortSignal.timeout(5000));
    },
  };
}
