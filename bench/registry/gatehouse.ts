/**
 * Starts Gatehouse with only the registry door for the benchmark, in its own process so that
 * its RSS is measured alone. Prints `LISTENING <url>` when ready; stops on SIGTERM.
 */
import { ADMIN_TOKEN, startGateway } from '../../test/integration/registry/harness.ts';

const upstream = process.argv[2];
if (upstream === undefined) throw new TypeError('Usage: gatehouse.ts UPSTREAM_URL');
const gw = await startGateway({
  config: {
    npm: { uplinks: [{ name: 'up', url: upstream }] },
    pypi: { enabled: false },
    cache: { metadataTtl: '1h', maxMetadataSize: '64MiB' },
    policy: { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } }] },
  },
  cacheBytes: 1024 * 1024 * 1024,
});
process.stdout.write(`LISTENING ${gw.url} ${ADMIN_TOKEN}\n`);
process.once('SIGTERM', () => {
  void Promise.resolve(gw[Symbol.asyncDispose]()).finally(() => process.exit(0));
});
