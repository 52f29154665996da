import { createHash } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Gateway, startGateway } from './harness.ts';

const DAY = 86_400_000;

/**
 * The packument a fake npm uplink serves for `name`: one version, published 30 days ago, whose
 * tarball is `<uplinkUrl>/<name>/-/<name>-1.0.0.tgz` with the sha512 integrity of `tarball`.
 */
function oneVersionPackument(name: string, uplinkUrl: string, tarball: Buffer): string {
  const version = '1.0.0';
  return JSON.stringify({
    name,
    'dist-tags': { latest: version },
    time: { [version]: new Date(Date.now() - 30 * DAY).toISOString() },
    versions: {
      [version]: {
        name,
        version,
        dist: {
          integrity: `sha512-${createHash('sha512').update(tarball).digest('base64')}`,
          tarball: `${uplinkUrl}/${name}/-/${name}-${version}.tgz`,
        },
      },
    },
  });
}

/**
 * A gateway whose npm uplink is a fake on 127.0.0.1: it serves the packument of any lower-case
 * `name` (one version whose tarball is `contentOf(name)`) and hands tarball requests to `tarball`.
 * `close` stops both.
 */
export async function startFileUplinkGateway(
  contentOf: (name: string) => Buffer,
  tarball: (res: ServerResponse, name: string) => void,
): Promise<{ readonly gw: Gateway; readonly close: () => Promise<void> }> {
  let uplinkUrl = '';
  const upstream = createServer((req, res) => {
    const path = req.url ?? '/';
    const name = /^\/([a-z]+)$/.exec(path)?.[1];
    if (name === undefined) {
      tarball(res, /^\/([a-z]+)\/-\//.exec(path)?.[1] ?? '');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(oneVersionPackument(name, uplinkUrl, contentOf(name)));
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  uplinkUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const gw = await startGateway({
    config: {
      npm: { uplinks: [{ name: 'public', url: uplinkUrl, retries: 0 }] },
      pypi: { enabled: false },
      policy: { rules: [] },
    },
  });
  return {
    gw,
    async close() {
      await gw[Symbol.asyncDispose]();
      upstream.closeAllConnections();
      await new Promise((resolve) => upstream.close(resolve));
    },
  };
}
