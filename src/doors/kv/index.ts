/**
 * The kv door: a gRPC key-value API (ConnectRPC: gRPC, gRPC-Web and Connect clients) that
 * authenticates, authorizes per namespace, validates, rate-limits and routes every call to the
 * namespace's backend driver (embedded SQLite, Redis, PostgreSQL, NATS JetStream KV).
 * @module
 */
import { isIP } from 'node:net';
import { GatewayError } from '#core/errors';
import type { App, ConfigSection, CoreServices } from '#core/app';
import { parseListen } from '#core/http';
import {
  createTlsContextProvider,
  ensureDevelopmentCa,
  ensureServerCertificate,
  type TlsContextProvider,
} from '#core/tls';
import { KvService } from '#gen/gatehouse/kv/v1/kv_pb.ts';
import { createKvAuditor, type KvAuditor } from './audit.ts';
import { type KvConfig, kvConfigSchema } from './config.ts';
import { createDriverRegistry, type DriverRegistry } from './drivers/registry.ts';
import { createGuard, type KvMetrics } from './guard.ts';
import { createPrincipalCache } from './principal-cache.ts';
import { type KvListener, startKvListener } from './server.ts';
import { createKvService } from './service.ts';

/** The `kv` configuration section: listener, TLS, drivers, namespace routing and limits. */
export { kvConfigSchema };
/** The parsed `kv` section. */
export type { KvConfig };
/** A typed gRPC client of the kv API (CLI, benchmark, tests). */
export { createKvClient, type KvClient, type KvClientOptions } from './client.ts';
export { type BatchingOptions, createKvBatcher, type KvBatchCalls, type KvBatcher } from './batcher.ts';
/** The KvDriver port every backend implements. */
export type { KvDriver, KvEntry } from './drivers/driver.ts';

/** Room for the key, metadata and framing next to the largest value. */
const MESSAGE_OVERHEAD = 1024 * 1024;

function createMetrics(core: CoreServices): KvMetrics {
  const m = core.metrics;
  return {
    requests: m.counter({
      name: 'proxy_requests_total',
      help: 'kv calls by method, gRPC status and namespace',
      labelNames: ['method', 'status', 'namespace'],
    }),
    duration: m.histogram({
      name: 'proxy_request_duration_seconds',
      help: 'kv call latency by method and namespace',
      labelNames: ['method', 'namespace'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    authFailures: m.counter({
      name: 'proxy_auth_failures_total',
      help: 'kv calls refused by authentication, by reason',
      labelNames: ['reason'],
    }),
    activeConnections: m.gauge({
      name: 'proxy_active_connections',
      help: 'Open connections to the kv listener',
    }),
    driverDuration: m.histogram({
      name: 'gatehouse_kv_driver_duration_seconds',
      help: 'Latency of kv backend calls by driver, operation and outcome',
      labelNames: ['driver', 'type', 'operation', 'outcome'],
      buckets: [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2],
    }),
  };
}

/** The development certificate's names: localhost and loopback, then `kv.tls.hosts`. */
function certificateHosts(hosts: readonly string[]) {
  const dnsNames = new Set(['localhost']);
  const ipAddresses = new Set(['127.0.0.1', '::1']);
  for (const [i, host] of hosts.entries()) {
    if (isIP(host) !== 0) ipAddresses.add(host);
    else if (/^[\d.]+$|:/.test(host)) {
      throw new GatewayError('GW_ERR_CONFIG_INVALID', {
        message: `kv.tls.hosts[${i}] "${host}" is neither an IP address nor a DNS name`,
      });
    } else dnsNames.add(host.toLowerCase());
  }
  return { dnsNames: [...dnsNames], ipAddresses: [...ipAddresses] };
}

async function tlsProvider(core: CoreServices, config: KvConfig): Promise<TlsContextProvider> {
  const { certFile, keyFile, clientCaFile, hosts } = config.tls;
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', {
      message: `kv.tls.${certFile === undefined ? 'certFile' : 'keyFile'} is missing: kv.tls.certFile and kv.tls.keyFile are set together or not at all`,
    });
  }
  if (certFile !== undefined && hosts.length > 0) {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', {
      message:
        'kv.tls.hosts names what the development certificate covers; with kv.tls.certFile the certificate is your own: put the names in it and remove kv.tls.hosts',
    });
  }
  let files: { certFile: string; keyFile: string; caFile: string | undefined };
  if (certFile !== undefined && keyFile !== undefined) {
    // Client certificates are verified against the development CA unless clientCaFile says
    // otherwise: without a CA, Node would trust every public root for client certificates.
    const caFile = clientCaFile ?? (await ensureDevelopmentCa(core.dataDir)).certFile;
    files = { certFile, keyFile, caFile };
  } else {
    // The embedded default: a development CA and server certificate in the data folder.
    const ca = await ensureDevelopmentCa(core.dataDir);
    const issued = await ensureServerCertificate({
      dataDir: core.dataDir,
      ca,
      ...certificateHosts(hosts),
    });
    files = { certFile: issued.certFile, keyFile: issued.keyFile, caFile: clientCaFile ?? ca.certFile };
  }
  return createTlsContextProvider({
    certFile: files.certFile,
    keyFile: files.keyFile,
    ...(files.caFile === undefined ? {} : { caFile: files.caFile }),
    minVersion: 'TLSv1.3',
    log: core.log.child({ door: 'kv', listener: 'kv' }),
  });
}

/**
 * Creates the kv door. `provision` builds metrics and drivers, `start` opens the TLS listener,
 * `stop` drains calls until the deadline and closes the drivers.
 */
export function createKvDoor(
  core: CoreServices,
  config: ConfigSection<KvConfig>,
): App & {
  /** The listener address once started, e.g. `https://127.0.0.1:7443`. */
  readonly url: string;
} {
  const log = core.log.child({ door: 'kv' });
  let registry: DriverRegistry | undefined;
  let metrics: KvMetrics | undefined;
  let listener: KvListener | undefined;
  let tls: TlsContextProvider | undefined;
  let auditor: KvAuditor | undefined;

  const stop = async (deadline: AbortSignal) => {
    await listener?.close(deadline);
    listener = undefined;
    tls?.close();
    tls = undefined;
    // Decisions already taken are written before the core closes the database under the log.
    await auditor?.drain(deadline);
    auditor = undefined;
    await registry?.close();
    registry = undefined;
  };

  return {
    name: 'kv',
    get url() {
      if (listener === undefined) throw new TypeError('The kv door is not listening');
      return listener.url;
    },
    async provision() {
      const current = config.current();
      metrics = createMetrics(core);
      registry = createDriverRegistry({
        config: current,
        clock: core.clock,
        dataDir: core.dataDir,
        log,
        histogram: metrics.driverDuration,
      });
      const drivers = registry.drivers;
      core.health.register('door:kv', async () => {
        const results = await Promise.allSettled(
          [...drivers.values()].map((d) => d.ping({ signal: AbortSignal.timeout(2000) })),
        );
        const down = [...drivers.keys()].filter((_, i) => results[i]?.status === 'rejected');
        return down.length === 0 ? { ok: true } : { ok: false, detail: `drivers down: ${down.join(', ')}` };
      });
    },
    async validate() {
      const current = config.current();
      if (parseListen(current.listen) === undefined) {
        throw new TypeError(`"kv.listen" is not a HOST:PORT address: "${current.listen}"`);
      }
    },
    async start() {
      if (registry === undefined || metrics === undefined)
        throw new TypeError('The kv door was not provisioned');
      const current = config.current();
      const address = parseListen(current.listen);
      if (address === undefined)
        throw new TypeError(`"kv.listen" is not a HOST:PORT address: "${current.listen}"`);
      const limits = () => config.current().limits;
      auditor = createKvAuditor({ audit: core.audit, settings: () => config.current().audit, log });
      const principalCache = createPrincipalCache({
        ttlMs: current.authCacheTtl,
        maxEntries: 10_000,
        now: () => core.clock.now(),
      });
      const guard = createGuard({ core, limits, metrics, auditor, principalCache });
      const drivers = current.drivers;
      const service = createKvService({
        guard,
        registry,
        clock: core.clock,
        limits: () => ({
          ...limits(),
          maxValueBytes: limits().maxValueSize,
          maxRequestBytes: limits().maxValueSize,
        }),
        timeoutOf: (name) => drivers[name]?.timeout ?? 2000,
      });
      tls = await tlsProvider(core, current);
      listener = await startKvListener({
        host: address.host,
        port: address.port,
        tls,
        handshakeTimeoutMs: current.tls.handshakeTimeout,
        idleTimeoutMs: current.tls.idleTimeout,
        connectionsPerIp: () => config.current().limits.connectionsPerIp,
        bufferedBytes: () => {
          const { bufferedBytesPerIp, bufferedBytes } = config.current().limits;
          return { perIp: bufferedBytesPerIp, total: bufferedBytes };
        },
        readMaxBytes: () => config.current().limits.maxValueSize + MESSAGE_OVERHEAD,
        service: KvService,
        methods: service,
        activeConnections: metrics.activeConnections,
        log,
      });
      log.info('kv door listening', { url: listener.url });
    },
    stop,
    async [Symbol.asyncDispose]() {
      await stop(AbortSignal.timeout(5000));
    },
  };
}
