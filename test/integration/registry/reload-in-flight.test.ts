/**
 * A policy reload while metadata is being built: the build started under one policy and decided
 * under the next must not be cached as the first policy's answer.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Gateway, registryConfig, startGateway } from './harness.ts';
import { type NpmUpstream, startNpmUpstream } from './npm-fixture.ts';

const DAY = 86_400_000;
const NOW = Date.now();
let work: string;
let up: NpmUpstream;
let gw: Gateway;
let front: Server;
/** While set, the front holds packument requests until it resolves. */
let hold: Promise<void> | undefined;
let held: (() => void) | undefined;
/** Called when the front receives a request while holding. */
let reached: (() => void) | undefined;
let config: Record<string, unknown>;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-reload-'));
  up = await startNpmUpstream(work, [
    {
      name: 'flip',
      versions: [
        { version: '1.0.0', publishedAt: NOW - 30 * DAY },
        { version: '1.1.0', publishedAt: NOW - 20 * DAY },
      ],
    },
  ]);
  // A pass-through in front of the fixture that can hold an answer.
  front = createServer((req, res) => {
    const pass = () => {
      const out = httpRequest(
        `${up.url}${req.url ?? '/'}`,
        { method: req.method, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      req.pipe(out);
    };
    if (hold === undefined) pass();
    else {
      reached?.();
      void hold.then(pass);
    }
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  config = {
    npm: { uplinks: [{ name: 'public', url: `http://127.0.0.1:${(front.address() as AddressInfo).port}` }] },
    pypi: { enabled: false },
    policy: { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } }] },
  };
  gw = await startGateway({ config });
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  front?.closeAllConnections();
  await new Promise<void>((resolve) => (front === undefined ? resolve() : front.close(() => resolve())));
  await up?.[Symbol.asyncDispose]();
  await rm(work, { recursive: true, force: true });
});

const versions = async () =>
  Object.keys(((await (await fetch(`${gw.url}/npm/flip`)).json()) as { versions: object }).versions);

void describe('policy reload while metadata is built', () => {
  void it('does not cache a document decided under a policy other than the one it was asked under', async () => {
    hold = new Promise((resolve) => {
      held = resolve;
    });
    const atUplink = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const inFlight = versions();
    // The request is at the uplink: reload to a policy that denies 1.1.0, then let it answer.
    await atUplink;
    const deny = { id: 'deny', type: 'denyList', list: { entries: [{ name: 'flip', versions: '1.1.0' }] } };
    gw.section.set(registryConfig({ ...config, policy: { rules: [deny] } }));
    hold = undefined;
    held?.();
    await inFlight;
    // Back to the first policy: its answer lists 1.1.0 again, not the one decided under the other.
    gw.section.set(registryConfig(config));
    assert.deepEqual((await versions()).toSorted(), ['1.0.0', '1.1.0']);
  });
});
