import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { runCliCaptured } from '#testing/cli-run';
import { identityCommands } from './identity.ts';

void describe('gatehouse keys add --expires', () => {
  const bodies: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => {
      text += c.toString();
    });
    req.on('end', () => {
      bodies.push(JSON.parse(text) as Record<string, unknown>);
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'k_1', name: 'x', secret: 'gh_secret', bindings: [] }));
    });
  });
  let env: Record<string, string>;
  before(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    env = { GATEHOUSE_URL: `http://127.0.0.1:${port}`, GATEHOUSE_TOKEN: 'token', HOME: '/nonexistent' };
  });
  after(() => server.close());
  const add = (expires: string) =>
    runCliCaptured(
      ['keys', 'add', 'x', '--role', 'admin', `--expires=${expires}`, '--json'],
      identityCommands,
      env,
    );

  void it('sends an ISO 8601 time as the RFC 3339 date-time of the API', async () => {
    for (const [text, sent] of [
      ['2027-01-31', '2027-01-31T00:00:00Z'],
      ['2027-01-31T12:00:00Z', '2027-01-31T12:00:00Z'],
      ['2027-01-31T12:00', '2027-01-31T12:00:00Z'],
      ['2027-01-31T14:00:05.250+02:00', '2027-01-31T14:00:05.250+02:00'],
      ['2027-01-31t14:00-0530', '2027-01-31T14:00:00-05:30'],
      ['2028-02-29', '2028-02-29T00:00:00Z'],
    ] as const) {
      const run = await add(text);
      assert.equal(run.code, 0, `${text}: ${run.err}`);
      assert.equal(bodies.at(-1)?.['expiresAt'], sent, text);
    }
  });

  void it('refuses anything else as a usage error naming --expires, before calling the server', async () => {
    const sent = bodies.length;
    for (const text of [
      'tomorrow',
      '',
      '2027-02-30',
      '2027-13-01',
      '2027-01-31T24:00',
      '2027-01-31T12:60',
      '2027-01-31T12:00+25:00',
      '1e12',
      '31/01/2027',
    ]) {
      const run = await add(text);
      assert.equal(run.code, 2, `${text}: ${run.out}`);
      assert.deepEqual(JSON.parse(run.out), {
        error: {
          message: `Invalid "--expires" "${text}": expected an ISO 8601 time such as "2027-01-31" (midnight UTC), "2027-01-31T12:00:00Z" or "2027-01-31T14:00+02:00"`,
          code: 'GW_ERR_CLI_USAGE',
        },
      });
    }
    assert.equal(bodies.length, sent, 'no refused key reached the server');
  });
});
