/**
 * Runs the edge data plane alone in its own process for the benchmark, so its RSS and CPU are
 * its own. The configuration (the `edge` section as JSON) comes in argv[2]; prints `READY <json>`
 * with the listener ports.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '#core/app';
import { createAuditLog } from '#core/audit';
import { validateRaw } from '#core/config';
import { createLogger } from '#core/log';
import { createMetrics } from '#core/metrics';
import { createLimiterFactory } from '#core/ratelimit';
import { createSqliteDatabase } from '#core/storage';
import { edgeConfigSchema } from '../../src/doors/edge/config.ts';
import { EdgeService } from '../../src/doors/edge/service.ts';
import { EDGE_MIGRATIONS, EdgeStore } from '../../src/doors/edge/store.ts';

const raw = JSON.parse(process.argv[2] ?? '{}') as Record<string, unknown>;
const dir = await mkdtemp(join(tmpdir(), 'edge-bench-'));
const log = createLogger({ level: 'warn' });
const db = await createSqliteDatabase({ file: join(dir, 'edge.db') });
const metrics = createMetrics({ processMetrics: false });
const audit = await createAuditLog({ db, file: join(dir, 'audit.jsonl'), clock: systemClock, log, metrics });
await db.migrate(EDGE_MIGRATIONS);
const config = validateRaw(edgeConfigSchema, { enabled: true, ...raw }, 'bench');
const service = new EdgeService(
  { log, metrics, audit, limiters: createLimiterFactory(), store: new EdgeStore(db) },
  config,
);
await service.start();
const ports = Object.fromEntries(service.listenerIds.map((id) => [id, service.listener(id)?.port ?? 0]));
console.log(`READY ${JSON.stringify(ports)}`);
process.on('SIGTERM', () => {
  void service.stop(AbortSignal.timeout(1000)).then(() => process.exit(0));
});
