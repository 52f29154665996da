import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { runCliCaptured } from '#testing/cli-run';
import { closedPort } from '#testing/services';
import { CliError, createApiClient } from './client.ts';
import { type CommandSpec, EXIT } from './framework.ts';

/** `thing rm ID` through the API client, as `artifacts rm` does. */
const commands: CommandSpec[] = [
  {
    name: 'thing rm',
    summary: 'Delete a thing',
    args: { min: 1, max: 1 },
    async run(ctx) {
      const client = await ctx.client();
      await client.request('DELETE', `/api/things/${ctx.args[0] ?? ''}`);
      return EXIT.ok;
    },
  },
];

const PROBLEM = {
  type: 'urn:gatehouse:error:GW_ERR_THING_NOT_FOUND',
  title: 'Thing not found',
  status: 404,
  detail: 'No thing "nope"',
  code: 'GW_ERR_THING_NOT_FOUND',
  errorId: '11111111-2222-3333-4444-555555555555',
};

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return String((server.address() as AddressInfo).port);
}

/** Why `client.request` failed against `server`, as the CLI's error. */
async function failure(server: string): Promise<CliError> {
  const client = createApiClient({ server, env: {} });
  const error = await client.request('GET', '/api/things').then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof CliError, String(error));
  assert.equal(error.code, 'GW_ERR_CLI_NO_SERVER');
  assert.equal(error.exitCode, EXIT.error);
  return error;
}

let problemServer: Server;
let problemUrl: string;
before(async () => {
  problemServer = createHttpServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/problem+json' }).end(JSON.stringify(PROBLEM));
  });
  problemUrl = `http://127.0.0.1:${await listen(problemServer)}`;
});
after(() => problemServer.close());

void describe('cli API client errors', () => {
  void it('shows the server error code and errorId once for people, and as keys in --json', async () => {
    const human = await runCliCaptured(['thing', 'rm', 'nope', '--server', problemUrl], commands);
    assert.equal(human.code, EXIT.error);
    assert.equal(human.err, `error: No thing "nope" (GW_ERR_THING_NOT_FOUND, errorId ${PROBLEM.errorId})\n`);
    const json = await runCliCaptured(['thing', 'rm', 'nope', '--server', problemUrl, '--json'], commands);
    assert.equal(json.code, EXIT.error);
    assert.deepEqual(JSON.parse(json.out), {
      error: { message: 'No thing "nope"', code: PROBLEM.code, errorId: PROBLEM.errorId },
    });
  });

  void it('names the reason a server is unreachable: a refused connection, with its system code', async () => {
    const server = `http://127.0.0.1:${await closedPort()}`;
    const error = await failure(server);
    assert.equal(
      error.message,
      `Cannot reach the Gatehouse server at "${server}": connection refused (ECONNREFUSED)`,
    );
  });

  void it('names the reason a server is unreachable: a port fetch refuses', async () => {
    const error = await failure('http://127.0.0.1:1');
    assert.match(error.message, /: fetch refuses to connect to this port \(bad port\)$/);
  });

  void it('names the reason a server is unreachable: plain HTTP on an https:// URL', async () => {
    const error = await failure(problemUrl.replace('http:', 'https:'));
    assert.match(
      error.message,
      /: TLS handshake failed: the port does not speak TLS \(ERR_SSL_WRONG_VERSION_NUMBER\)$/,
    );
  });

  void it('names the reason a server is unreachable: a certificate the client does not trust', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-client-tls-'));
    try {
      const self = 'req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1';
      const files = ['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')];
      await promisify(execFile)('openssl', [
        ...self.split(' '),
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        ...files,
      ]);
      const tls = createHttpsServer(
        { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) },
        (_req, res) => res.end('{}'),
      );
      const server = `https://127.0.0.1:${await listen(tls)}`;
      try {
        const error = await failure(server);
        assert.equal(
          error.message,
          `Cannot reach the Gatehouse server at "${server}": the server certificate is not trusted: add the CA that signed it to NODE_EXTRA_CA_CERTS (DEPTH_ZERO_SELF_SIGNED_CERT)`,
        );
      } finally {
        tls.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
