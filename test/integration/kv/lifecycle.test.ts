import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type GrpcError, grpcClient } from './grpc-client.ts';
import { type Blackhole, type KvGateway, startBlackhole, startKvGateway } from './harness.ts';

void describe('kv door lifecycle', () => {
  let gw: KvGateway;
  let blackhole: Blackhole;
  before(async () => {
    blackhole = await startBlackhole();
    const hole = blackhole.port;
    gw = await startKvGateway({
      kv: {
        drivers: {
          embedded: { type: 'memory' },
          slow: { type: 'redis', url: `redis://127.0.0.1:${hole}`, timeout: '800ms' },
        },
        namespaces: { slow: 'slow' },
      },
    });
  });
  after(async () => {
    await gw?.close();
    await blackhole?.close();
  });

  void it('drains an in-flight call on stop and accepts nothing new', async () => {
    const client = grpcClient(gw.url, gw.ca);
    const auth = { authorization: `Bearer ${await gw.token(['operator:slow'])}` };
    const pending = client.call('Get', { namespace: 'slow', key: 'k' }, auth).catch((e: GrpcError) => e);
    // The driver connects on its first call: that connection means the call is inside the door.
    await blackhole.connected();
    const stopped = gw.door.stop(AbortSignal.timeout(5000));
    const outcome = (await pending) as GrpcError;
    // Answered by the door (driver deadline), not cut off by the shutdown.
    assert.equal(outcome.code, 14);
    assert.equal(outcome.metadata.get('gatehouse-error-code')[0], 'GW_ERR_KV_BACKEND_UNAVAILABLE');
    await stopped;
    client.close();
    const probe = connect(Number(new URL(gw.url).port), '127.0.0.1');
    const [error] = (await once(probe, 'error')) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ECONNREFUSED');
  });
});
