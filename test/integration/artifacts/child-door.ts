/**
 * A gateway process with only the artifacts door, for crash (kill -9) and memory tests:
 * `node child-door.ts <data folder> [artifacts section as JSON]`. Prints `listening <url>`.
 */
import { flushCompileCache } from 'node:module';
import { startDoor } from './harness.ts';

const [home = '', raw = '{}'] = process.argv.slice(2);
const h = await startDoor(JSON.parse(raw) as Record<string, unknown>, home);
// As `gatehouse serve` does once it listens (ADR 0101): the next child starts from a warm cache.
flushCompileCache();
process.stdout.write(`listening ${h.url}\n`);
process.once('SIGTERM', () => {
  void h[Symbol.asyncDispose]().then(() => process.exit(0));
});
