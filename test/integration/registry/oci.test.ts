/**
 * skopeo copies images through the registry door's `/v2/` from a docker-registry upstream behind
 * a Bearer token realm; the test builds and pushes the images itself. No network beyond loopback.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createServer,
  type IncomingMessage,
  request as httpRequest,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ADMIN_TOKEN, ageRuleEscapes, type Gateway, startGateway, TestClock } from './harness.ts';
import { type OciUpstream, PASSWORD, startOciUpstream, USER } from './oci-fixture.ts';

const run = promisify(execFile);
const DAY = 86_400_000;
const NOW = Date.now();
const iso = (t: number) => new Date(t).toISOString();
/** An image a month old with the given layer content (the same content gives the same digest). */
const image = (content: string) => ({ created: iso(NOW - 30 * DAY), content });

let work: string;
let up: OciUpstream;
let gw: Gateway;
let config: Record<string, unknown>;
/**
 * A reverse proxy in front of docker-registry that answers 429 while `throttled.on`, 503 to
 * requests whose path contains one of `throttled.failing`, and 200 with the given body to those
 * whose path contains a key of `throttled.bodies`.
 */
let throttled: {
  server: Server;
  url: string;
  on: boolean;
  failing: Set<string>;
  bodies: Map<string, string>;
  /** Pages tags lists by this many tags whatever `n` asks, as registries that cap `n` do. */
  pageSize?: number;
  /** A `Link` header sent with the `bodies` answers. */
  link?: string;
  /** Every request the proxy received, as `<method> <path>`. */
  seen: string[];
};
const digests: Record<string, string> = {};

/** Answers one page of a tags list, with a relative `Link` to the next one. */
function paginate(upstream: IncomingMessage, res: ServerResponse, url: URL, size: number): void {
  const parts: Buffer[] = [];
  upstream.on('data', (c: Buffer) => parts.push(c));
  upstream.on('end', () => {
    const doc = JSON.parse(Buffer.concat(parts).toString('utf8')) as { name: string; tags: string[] };
    const last = url.searchParams.get('last');
    const later = doc.tags.toSorted().filter((t) => last === null || t > last);
    const page = later.slice(0, size);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (later.length > page.length)
      headers['link'] = `<${url.pathname}?n=${size}&last=${page.at(-1) ?? ''}>; rel="next"`;
    res.writeHead(200, headers).end(JSON.stringify({ name: doc.name, tags: page }));
  });
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'registry-oci-'));
  up = await startOciUpstream(work);
  digests['old'] = await up.push('team/app', 'old', { created: iso(NOW - 30 * DAY), content: 'old\n' });
  digests['fresh'] = await up.push('team/app', 'fresh', {
    created: iso(NOW - 3_600_000),
    content: 'fresh\n',
  });
  digests['repro'] = await up.push('team/app', 'repro', {
    created: '1970-01-01T00:00:00Z',
    content: 'repro\n',
  });
  for (const t of ['a1', 'a2', 'a3'])
    await up.push('team/many', t, { created: iso(NOW - 10 * DAY), content: `${t}\n` });
  const proxy = createServer((req, res) => {
    throttled.seen.push(`${req.method ?? ''} ${req.url ?? ''}`);
    if (throttled.on) {
      // What a rate-limiting registry sends (distribution-spec error codes, TOOMANYREQUESTS).
      res
        .writeHead(429, { 'retry-after': '7', 'content-type': 'application/json' })
        .end('{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit reached"}]}');
      return;
    }
    if ([...throttled.failing].some((part) => req.url?.includes(part))) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('upstream overloaded\n');
      return;
    }
    const body = [...throttled.bodies].find(([part]) => req.url?.includes(part))?.[1];
    if (body !== undefined) {
      const link = throttled.link === undefined ? {} : { link: throttled.link };
      res.writeHead(200, { 'content-type': 'application/json', ...link }).end(body);
      return;
    }
    const target = new URL(up.url);
    const forward = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (upstream) => {
        if (
          throttled.pageSize !== undefined &&
          upstream.statusCode === 200 &&
          req.url?.includes('/tags/list')
        ) {
          // Pages as distribution-spec "Listing Tags" describes (docker-registry 2.8 does not).
          paginate(upstream, res, new URL(req.url, 'http://registry'), throttled.pageSize);
          return;
        }
        res.writeHead(upstream.statusCode ?? 502, upstream.headers);
        upstream.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  throttled = {
    server: proxy,
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    on: true,
    failing: new Set(),
    bodies: new Map(),
    seen: [],
  };
  config = {
    npm: { enabled: false },
    oci: {
      uplinks: [
        { name: 'hub', url: up.url, username: USER, password: PASSWORD, retries: 0 },
        { name: 'throttled', url: throttled.url, username: USER, password: PASSWORD, retries: 0 },
        { name: 'badcreds', url: up.url, username: USER, password: 'wrong', retries: 0 },
        { name: 'flaky', url: throttled.url, username: USER, password: PASSWORD, retries: 0 },
        { name: 'paged', url: throttled.url, username: USER, password: PASSWORD, retries: 0 },
      ],
    },
    policy: { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } }] },
  };
  gw = await startGateway({ config });
});

after(async () => {
  await gw?.[Symbol.asyncDispose]();
  throttled?.server.closeAllConnections();
  throttled?.server.close();
  await up?.[Symbol.asyncDispose]();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

const gwHost = () => new URL(gw.url).host;

async function skopeo(args: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run('skopeo', ['--insecure-policy', ...args], { timeout: 120_000 });
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

void describe('skopeo through the registry door', () => {
  void it('copies an allowed image byte for byte through the token flow', async () => {
    const dest = join(work, 'copy-old');
    const r = await skopeo([
      'copy',
      '--src-tls-verify=false',
      `docker://${gwHost()}/hub/team/app:old`,
      `oci:${dest}:old`,
    ]);
    assert.ok(r.ok, r.output);
    const index = JSON.parse(await readFile(join(dest, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    assert.equal(index.manifests[0]?.digest, digests['old']);
    assert.ok(up.tokenRequests.includes('repository:team/app:pull'));
    const head = await fetch(`${gw.url}/v2/hub/team/app/manifests/old`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('docker-content-digest'), digests['old']);
    const body = Buffer.from(
      await (await fetch(`${gw.url}/v2/hub/team/app/manifests/${digests['old']}`)).arrayBuffer(),
    );
    assert.equal(`sha256:${createHash('sha256').update(body).digest('hex')}`, digests['old']);
  });

  void it('refuses a fresh image and one whose created time is implausible, with DENIED and a Warning', async () => {
    for (const tag of ['fresh', 'repro']) {
      const r = await skopeo(['inspect', '--tls-verify=false', `docker://${gwHost()}/hub/team/app:${tag}`]);
      assert.ok(!r.ok, tag);
      assert.match(r.output, /denied/i);
      assert.match(r.output, /minimum age is 2d/);
      const res = await fetch(`${gw.url}/v2/hub/team/app/manifests/${tag}`);
      assert.equal(res.status, 403);
      assert.match(res.headers.get('warning') ?? '', /^299 gatehouse ".*minimum age/);
      const doc = (await res.json()) as { errors: { code: string }[] };
      assert.equal(doc.errors[0]?.code, 'DENIED');
    }
  });

  void it('lets a young image through by exclusion, per-registry rule exclusion and override', async () => {
    const manifest = `${gw.url}/v2/hub/team/app/manifests/fresh`;
    const tags = async () =>
      ((await (await fetch(`${gw.url}/v2/hub/team/app/tags/list`)).json()) as { tags: string[] }).tags;
    await ageRuleEscapes(gw, config, { registry: 'hub', pattern: 'hub/team/*' }, async (label) => {
      assert.equal((await fetch(manifest)).status, 200, label);
      assert.ok((await tags()).includes('fresh'), label);
    });
    assert.equal((await fetch(manifest)).status, 403);
    assert.ok(!(await tags()).includes('fresh'));
  });

  void it('filters and paginates the tags list', async () => {
    const all = (await (await fetch(`${gw.url}/v2/hub/team/app/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(all.tags, ['old']);
    const first = await fetch(`${gw.url}/v2/hub/team/many/tags/list?n=2`);
    assert.deepEqual(((await first.json()) as { tags: string[] }).tags, ['a1', 'a2']);
    assert.equal(first.headers.get('link'), '</v2/hub/team/many/tags/list?n=2&last=a2>; rel="next"');
    const next = (await (await fetch(`${gw.url}/v2/hub/team/many/tags/list?n=2&last=a2`)).json()) as {
      tags: string[];
    };
    assert.deepEqual(next.tags, ['a3']);
    const empty = await fetch(`${gw.url}/v2/hub/team/many/tags/list?n=0`);
    assert.equal(empty.status, 200);
    assert.deepEqual(((await empty.json()) as { tags: string[] }).tags, []);
  });

  void it('answers bad input in the OCI error format', async () => {
    const cases: [string, number, string][] = [
      ['/v2/hub/team/app/manifests/sha256:1234', 400, 'DIGEST_INVALID'],
      ['/v2/hub/Team/app/manifests/old', 400, 'NAME_INVALID'],
      [`/v2/hub/team/app/manifests/sha256:${'0'.repeat(64)}`, 404, 'MANIFEST_UNKNOWN'],
      ['/v2/nowhere/team/app/manifests/old', 404, 'MANIFEST_UNKNOWN'],
      ['/v2/badcreds/team/app/manifests/old', 502, 'UNAUTHORIZED'],
      // distribution-spec PAGINATION_NUMBER_INVALID, as the reference registry answers.
      ['/v2/hub/team/app/tags/list?n=abc', 400, 'PAGINATION_NUMBER_INVALID'],
      ['/v2/hub/team/app/tags/list?n=-1', 400, 'PAGINATION_NUMBER_INVALID'],
      ['/v2/hub/team/app/tags/list?n=1.5', 400, 'PAGINATION_NUMBER_INVALID'],
      ['/v2/hub/team/app/tags/list?n=1&n=2', 400, 'PAGINATION_NUMBER_INVALID'],
    ];
    for (const [path, status, code] of cases) {
      const r = await fetch(`${gw.url}${path}`);
      assert.equal(r.status, status, path);
      assert.equal(((await r.json()) as { errors: { code: string }[] }).errors[0]?.code, code, path);
    }
  });
});

void describe('a rate-limiting OCI upstream', () => {
  void it('answers 429 TOOMANYREQUESTS with Retry-After, audits it, caches nothing', async () => {
    throttled.on = true;
    // Checked with fetch: skopeo itself waits out Retry-After and retries before it gives up.
    for (const path of ['manifests/old', `blobs/${digests['old']}`, 'tags/list']) {
      const r = await fetch(`${gw.url}/v2/throttled/team/app/${path}`);
      assert.equal(r.status, 429, path);
      assert.equal(r.headers.get('retry-after'), '7', path);
      const doc = (await r.json()) as { errors: { code: string; message: string }[] };
      assert.equal(doc.errors[0]?.code, 'TOOMANYREQUESTS', path);
      assert.match(doc.errors[0]?.message ?? '', /rate limited/);
    }
    await gw.core.audit.verify();
    const events = await gw.core.audit.query({
      action: 'registry.upstream.error',
      resource: 'path:/v2/throttled/team/app/manifests/old',
    });
    assert.ok(events.events.length >= 1);
    throttled.on = false;
    const served = await skopeo([
      'inspect',
      '--tls-verify=false',
      `docker://${gwHost()}/throttled/team/app:old`,
    ]);
    assert.ok(served.ok, served.output);
    assert.equal((JSON.parse(served.output) as { Digest: string }).Digest, digests['old']);
  });
});

void describe('an OCI upstream failing some requests', () => {
  void it('fails a tags list whose tag manifests the uplink cannot serve, instead of caching it short', async () => {
    throttled.on = false;
    throttled.failing.add('/team/many/manifests/a2');
    const broken = await fetch(`${gw.url}/v2/flaky/team/many/tags/list`);
    assert.equal(broken.status, 502);
    const doc = (await broken.json()) as { errors: { code: string; message: string }[] };
    assert.equal(doc.errors[0]?.code, 'UNKNOWN');
    assert.match(doc.errors[0]?.message ?? '', /status 503/);
    await gw.core.audit.verify();
    const events = await gw.core.audit.query({
      action: 'registry.upstream.error',
      resource: 'path:/v2/flaky/team/many/tags/list',
    });
    assert.equal(events.events.length, 1);
    throttled.failing.clear();
    const listed = (await (await fetch(`${gw.url}/v2/flaky/team/many/tags/list`)).json()) as {
      tags: string[];
    };
    assert.deepEqual(listed.tags, ['a1', 'a2', 'a3']);
  });

  void it('follows the upstream tags list pages of a registry that caps the page size', async () => {
    throttled.on = false;
    throttled.pageSize = 1;
    try {
      const listed = (await (await fetch(`${gw.url}/v2/paged/team/many/tags/list`)).json()) as {
        tags: string[];
      };
      assert.deepEqual(listed.tags, ['a1', 'a2', 'a3']);
    } finally {
      delete throttled.pageSize;
    }
    // The uplink's credentials would follow a page link to another origin: refused.
    throttled.bodies.set('/team/app/tags/list', '{"name":"team/app","tags":["old"]}');
    throttled.link = '<http://127.0.0.1:9/v2/team/app/tags/list?n=1&last=old>; rel="next"';
    try {
      const foreign = await fetch(`${gw.url}/v2/paged/team/app/tags/list`);
      assert.equal(foreign.status, 502);
      assert.match(await foreign.text(), /next page on another origin \\"http:\/\/127\.0\.0\.1:9\\"/);
    } finally {
      throttled.bodies.clear();
      delete throttled.link;
    }
  });

  void it('answers a malformed upstream tags list with a clear 502, audited, not an internal error', async () => {
    throttled.on = false;
    for (const body of ['<html>maintenance</html>', 'null', '{"tags":"old"}']) {
      throttled.bodies.set('/team/app/tags/list', body);
      const r = await fetch(`${gw.url}/v2/flaky/team/app/tags/list`);
      assert.equal(r.status, 502, body);
      const doc = (await r.json()) as { errors: { message: string; detail: { code: string } }[] };
      assert.equal(doc.errors[0]?.detail.code, 'GW_ERR_REGISTRY_UPSTREAM_INVALID', body);
      assert.match(doc.errors[0]?.message ?? '', /sent an invalid tags list for "flaky\/team\/app"/, body);
    }
    await gw.core.audit.verify();
    const events = await gw.core.audit.query({
      action: 'registry.upstream.invalid',
      resource: 'oci:flaky/team/app',
    });
    assert.equal(events.events.length, 3);
    throttled.bodies.clear();
    const listed = (await (await fetch(`${gw.url}/v2/flaky/team/app/tags/list`)).json()) as {
      tags: string[];
    };
    assert.deepEqual(listed.tags, ['old']);
  });
});

void describe('deny lists naming a tag or a digest of one manifest', () => {
  void it('refuse that manifest by tag, by digest and through every other tag known to point at it', async () => {
    // The same image under two tags has one digest; each repository gets its own copies.
    const d: Record<string, string> = {};
    for (const repo of ['team/pinned', 'team/listed']) {
      for (const tag of ['v1', 'latest']) d[`${repo}:${tag}`] = await up.push(repo, tag, image('one\n'));
      d[`${repo}:v2`] = await up.push(repo, 'v2', image('two\n'));
      d[`${repo}:e1`] = await up.push(repo, 'e1', image('evil\n'));
    }
    assert.equal(d['team/pinned:v1'], d['team/pinned:latest']);
    assert.notEqual(d['team/pinned:v1'], d['team/pinned:v2']);
    const evil = d['team/pinned:e1'] as string;
    await using gate = await startGateway({
      config: {
        npm: { enabled: false },
        oci: { uplinks: [{ name: 'hub', url: up.url, username: USER, password: PASSWORD, retries: 0 }] },
        policy: {
          rules: [
            {
              id: 'pins',
              type: 'denyList',
              // No ecosystem: `v1` is valid OCI (and npm) version syntax, the digest OCI only.
              list: {
                entries: [
                  { name: 'hub/team/*', versions: 'v1' },
                  { name: 'hub/team/*', versions: evil },
                ],
              },
            },
          ],
        },
      },
    });
    const status = async (repo: string, reference: string) =>
      (await fetch(`${gate.url}/v2/hub/${repo}/manifests/${reference}`)).status;
    const v1 = d['team/pinned:v1'] as string;
    // The reviewer's sequence: the tag first, then its digest, then another tag with that digest.
    assert.equal(await status('team/pinned', 'v1'), 403);
    const byDigest = await fetch(`${gate.url}/v2/hub/team/pinned/manifests/${v1}`);
    assert.equal(byDigest.status, 403);
    assert.match(
      ((await byDigest.json()) as { errors: { message: string }[] }).errors[0]?.message ?? '',
      /\(through "v1"\) is on the deny list as "hub\/team\/\* v1"/,
    );
    assert.equal(await status('team/pinned', 'latest'), 403);
    const pulled = await skopeo([
      'inspect',
      '--tls-verify=false',
      `docker://${new URL(gate.url).host}/hub/team/pinned@${v1}`,
    ]);
    assert.ok(!pulled.ok, pulled.output);
    assert.match(pulled.output, /denied/i);
    // A denied digest refuses the tag that resolves to it.
    assert.equal(await status('team/pinned', 'e1'), 403);
    assert.equal(await status('team/pinned', evil), 403);
    assert.equal(await status('team/pinned', 'v2'), 200);
    assert.equal(await status('team/pinned', d['team/pinned:v2'] as string), 200);
    // A tags list links every tag to its digest before deciding any: a manifest never pulled by a
    // denied tag is refused by digest and through its other tags once the list was read.
    const listed = (await (await fetch(`${gate.url}/v2/hub/team/listed/tags/list`)).json()) as {
      tags: string[];
    };
    assert.deepEqual(listed.tags, ['v2']);
    assert.equal(await status('team/listed', d['team/listed:v1'] as string), 403);
    assert.equal(await status('team/listed', 'latest'), 403);
    assert.equal(await status('team/listed', 'v2'), 200);
    // `policy test` decides as a pull would: by digest and through the other tags too.
    const policyTest = async (version: string) => {
      const res = await fetch(`${gate.url}/api/registry/policy/test`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ecosystem: 'oci', name: 'hub/team/pinned', version }),
      });
      assert.equal(res.status, 200);
      return ((await res.json()) as { decision: { allowed: boolean; reason: string } }).decision;
    };
    for (const version of ['v1', v1, 'latest', 'e1', evil]) {
      const decision = await policyTest(version);
      assert.equal(decision.allowed, false, version);
      assert.match(decision.reason, /deny list/, version);
    }
    assert.equal((await policyTest('v2')).allowed, true);
  });
});

/** The message of an OCI error body. */
const message = async (res: Response) =>
  ((await res.json()) as { errors: { message: string }[] }).errors[0]?.message ?? '';

void describe('a deny list naming a tag, on a fresh gateway', () => {
  void it('resolves the named tag before deciding the first pull by another tag or by digest', async () => {
    throttled.on = false;
    const d: Record<string, string> = {};
    for (const repo of ['first/by-tag', 'first/by-digest', 'first/down', 'first/no-v1']) {
      const tags = repo === 'first/no-v1' ? ['latest'] : ['v1', 'latest'];
      for (const tag of tags) d[`${repo}:${tag}`] = await up.push(repo, tag, image(`${repo}\n`));
      d[`${repo}:v3`] = await up.push(repo, 'v3', image(`${repo} three\n`));
    }
    await using gate = await startGateway({
      config: {
        npm: { enabled: false },
        oci: {
          uplinks: [{ name: 'watch', url: throttled.url, username: USER, password: PASSWORD, retries: 0 }],
        },
        policy: {
          rules: [
            {
              id: 'pins',
              type: 'denyList',
              list: { entries: [{ name: 'watch/first/*', versions: 'v1', reason: 'pinned out' }] },
            },
          ],
        },
      },
    });
    throttled.seen.length = 0;
    const pull = (repo: string, reference: string) =>
      fetch(`${gate.url}/v2/watch/${repo}/manifests/${reference}`);
    // `latest` first: nothing linked it to v1's digest before.
    const latest = await pull('first/by-tag', 'latest');
    assert.equal(latest.status, 403);
    assert.match(
      await message(latest),
      /\(through "v1"\) is on the deny list as "watch\/first\/\* v1": pinned out/,
    );
    // By digest first, with a real client.
    const host = new URL(gate.url).host;
    const inspected = await skopeo([
      'inspect',
      '--tls-verify=false',
      `docker://${host}/watch/first/by-digest@${d['first/by-digest:v1'] ?? ''}`,
    ]);
    assert.ok(!inspected.ok, inspected.output);
    assert.match(inspected.output, /denied/i);
    assert.equal((await pull('first/by-digest', d['first/by-digest:latest'] as string)).status, 403);
    // An unrelated tag and its digest are allowed; so is a repository without the named tag.
    assert.equal((await pull('first/by-tag', 'v3')).status, 200);
    assert.equal((await pull('first/by-digest', d['first/by-digest:v3'] as string)).status, 200);
    assert.equal((await pull('first/no-v1', 'latest')).status, 200);
    assert.equal((await pull('first/no-v1', 'latest')).status, 200);
    // Only the named tag was asked for, once per repository (then linked, or known absent), and
    // never a tags list.
    const asked = (path: string) => throttled.seen.filter((r) => r.includes(path)).length;
    assert.equal(asked('/tags/list'), 0);
    assert.equal(asked('/first/by-tag/manifests/v1'), 1);
    assert.equal(asked('/first/by-digest/manifests/v1'), 1);
    assert.equal(asked('/first/no-v1/manifests/v1'), 1);
    // When the uplink cannot say where the denied tag points, the deny list fails closed.
    throttled.failing.add('/first/down/manifests/v1');
    try {
      const down = await pull('first/down', 'latest');
      assert.equal(down.status, 403);
      assert.match(
        await message(down),
        /cannot be checked against the deny list entry "watch\/first\/\* v1": where "v1" points is unknown \(.*503/,
      );
      assert.equal((await pull('first/down', d['first/down:v3'] as string)).status, 403);
    } finally {
      throttled.failing.clear();
    }
    assert.equal((await pull('first/down', 'latest')).status, 403);
    assert.equal((await pull('first/down', 'v3')).status, 200);
    assert.equal(asked('/tags/list'), 0);
    // `v1` appears in first/no-v1 (latest's manifest) and is pulled: its absence is forgotten.
    // Should its links then be evicted while the uplink fails, the deny list fails closed
    // instead of reading the old absence as "v1 points nowhere".
    await up.push('first/no-v1', 'v1', image('first/no-v1\n'));
    assert.equal((await pull('first/no-v1', 'v1')).status, 403);
    for (const what of ['tag|v1', 'stale-tag|v1', `digest-tags|${d['first/no-v1:latest'] ?? ''}`])
      await gate.core.cache.delete(`reg:v1:oci:watch/first/no-v1|index|${what}`);
    throttled.failing.add('/first/no-v1/manifests/v1');
    try {
      assert.equal((await pull('first/no-v1', 'latest')).status, 403);
    } finally {
      throttled.failing.clear();
    }
  });
});

/** A gateway whose uplink `flaky` goes through the `throttled` proxy, with a 2-day minimum age. */
const flakyGateway = (clock: TestClock) =>
  startGateway({
    clock,
    config: {
      npm: { enabled: false },
      oci: {
        uplinks: [{ name: 'flaky', url: throttled.url, username: USER, password: PASSWORD, retries: 0 }],
      },
      policy: { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } }] },
    },
  });

void describe('an OCI uplink that goes down', () => {
  void it('serves a tag it resolved before from its last good digest, with Warning 110, audited', async () => {
    throttled.on = false;
    const clock = new TestClock(Date.now());
    await using offline = await flakyGateway(clock);
    const manifest = (tag: string, method = 'GET') =>
      fetch(`${offline.url}/v2/flaky/team/app/manifests/${tag}`, { method });
    const first = await manifest('old');
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('warning'), null);
    const bytes = Buffer.from(await first.arrayBuffer());
    // Past metadataTtl (5m) the tag must be resolved again, and the uplink is down.
    clock.time += 10 * 60_000;
    throttled.failing.add('/team/app/manifests/');
    try {
      for (const method of ['GET', 'HEAD']) {
        const stale = await manifest('old', method);
        assert.equal(stale.status, 200, method);
        assert.equal(stale.headers.get('docker-content-digest'), digests['old'], method);
        assert.equal(
          stale.headers.get('warning'),
          '110 gatehouse "Response is stale: uplink flaky unavailable"',
        );
        if (method === 'GET') assert.deepEqual(Buffer.from(await stale.arrayBuffer()), bytes);
      }
      await offline.core.audit.verify();
      const events = await offline.core.audit.query({
        action: 'registry.cache.stale',
        resource: 'oci:flaky/team/app:old',
      });
      assert.equal(events.events.length, 2);
      // A tag never resolved before has nothing to fall back on.
      const unknown = await manifest('repro');
      assert.equal(unknown.status, 502);
      assert.equal(unknown.headers.get('warning'), null);
    } finally {
      throttled.failing.clear();
    }
    const fresh = await manifest('old');
    assert.equal(fresh.status, 200);
    assert.equal(fresh.headers.get('warning'), null);
  });
  void it('dates an image without a believable created time by its first sight, read once', async () => {
    throttled.on = false;
    const clock = new TestClock(Date.now());
    await using door = await flakyGateway(clock);
    const manifest = () => fetch(`${door.url}/v2/flaky/team/app/manifests/${digests['repro']}`);
    const blobReads = () =>
      throttled.seen.filter((r) => r.startsWith('GET ') && r.includes('/blobs/')).length;
    const readsBefore = blobReads();
    // `created` says 1970 (a reproducible build): the image is as new as the door's first sight.
    const first = await manifest();
    assert.equal(first.status, 403);
    assert.match(await first.text(), /minimum age is 2d/);
    assert.equal(blobReads(), readsBefore + 1, 'the image config is read to date the image');
    clock.time += 10 * 60_000; // past metadataTtl: the manifest is decided again
    assert.equal((await manifest()).status, 403);
    // Two days on it passes, dated by the kept first sight: even with the uplink's blobs failing.
    clock.time += 2 * DAY;
    throttled.failing.add('/blobs/');
    try {
      const later = await manifest();
      assert.equal(later.status, 200);
      assert.equal(later.headers.get('docker-content-digest'), digests['repro']);
    } finally {
      throttled.failing.clear();
    }
    assert.equal(blobReads(), readsBefore + 1, 'the config was read once');
  });
  void it('dates an image a tag moved to no earlier than the last time the tag pointed elsewhere', async () => {
    const clock = new TestClock(Date.now());
    await using moving = await startGateway({
      clock,
      config: {
        npm: { enabled: false },
        oci: { uplinks: [{ name: 'hub', url: up.url, username: USER, password: PASSWORD, retries: 0 }] },
        policy: { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } }] },
      },
    });
    const manifest = (ref: string) => fetch(`${moving.url}/v2/hub/team/moving/manifests/${ref}`);
    const first = await up.push('team/moving', 'stable', image('moving v1\n'));
    assert.equal((await manifest('stable')).status, 200);
    // The tag moves to an image built with a `created` a month back (a backdated build).
    const second = await up.push('team/moving', 'stable', image('moving v2\n'));
    assert.notEqual(second, first);
    clock.time += 10 * 60_000; // past metadataTtl: the door asks the uplink again
    const moved = await manifest('stable');
    assert.equal(moved.status, 403);
    assert.match(await moved.text(), /minimum age is 2d/);
    assert.equal((await manifest(second)).status, 403);
    // Two days after the door saw the tag elsewhere, the image is old enough.
    clock.time += 2 * DAY;
    assert.equal((await manifest('stable')).status, 200);
    // A tag moved back to an image the door already dated keeps that image's time.
    await up.push('team/moving', 'stable', image('moving v1\n'));
    clock.time += 10 * 60_000;
    const back = await manifest('stable');
    assert.equal(back.status, 200);
    assert.equal(back.headers.get('docker-content-digest'), first);
  });
});

/** The tag cosign signs an image under. */
const tagOf = (digest: string) => `sha256-${digest.slice('sha256:'.length)}.sig`;

void describe('cosign signatures through the door', () => {
  void it('dates a signature by the image it signs; anything else under such a tag keeps its own date', async () => {
    throttled.on = false;
    const SIG = 'application/vnd.dev.cosign.simplesigning.v1+json';
    // An image a month old and its signature (no created of its own, as cosign writes them).
    const old = await up.push('sig/old', 'v1', image('signed old\n'));
    await up.push('sig/old', tagOf(old), { content: '{"critical":{}}', layerMediaType: SIG });
    // An image an hour old and its signature.
    const young = await up.push('sig/young', 'v1', { created: iso(NOW - 3_600_000), content: 'young\n' });
    await up.push('sig/young', tagOf(young), { content: '{"critical":{}}', layerMediaType: SIG });
    // A runnable image pushed under a signature tag of the old image, with an implausible created.
    const other = await up.push('sig/fake', 'v1', image('fake subject\n'));
    await up.push('sig/fake', tagOf(other), { created: '1970-01-01T00:00:00Z', content: 'runnable\n' });
    await using door = await startGateway({
      config: {
        npm: { enabled: false },
        oci: { uplinks: [{ name: 'hub', url: up.url, username: USER, password: PASSWORD, retries: 0 }] },
        policy: { rules: [{ id: 'min-age', type: 'minimumAge', minimumAge: { age: '2d' } }] },
      },
    });
    const status = async (repo: string, ref: string) =>
      (await fetch(`${door.url}/v2/hub/${repo}/manifests/${ref}`)).status;
    assert.equal(await status('sig/old', 'v1'), 200);
    assert.equal(await status('sig/old', tagOf(old)), 200, 'the signature of an old image');
    assert.equal(await status('sig/young', tagOf(young)), 403, 'the signature of a young image');
    assert.equal(await status('sig/fake', tagOf(other)), 403, 'a runnable image under a signature tag');
  });
});

void describe('skopeo login to the registry door (registry.auth: required)', () => {
  void it('challenges on /v2/, accepts a token as the login password, refuses a wrong one', async () => {
    await using guarded = await startGateway({
      config: {
        auth: 'required',
        npm: { enabled: false },
        oci: { uplinks: [{ name: 'hub', url: up.url, username: USER, password: PASSWORD, retries: 0 }] },
      },
    });
    const host = new URL(guarded.url).host;
    const authfile = join(work, 'auth.json');
    const probe = await fetch(`${guarded.url}/v2/`);
    assert.equal(probe.status, 401);
    assert.equal(
      probe.headers.get('www-authenticate'),
      `Bearer realm="${guarded.url}/api/registry/oci/token",service="gatehouse-registry"`,
    );
    assert.equal(((await probe.json()) as { errors: { code: string }[] }).errors[0]?.code, 'UNAUTHORIZED');
    const reference = `docker://${host}/hub/team/app:old`;
    const anonymous = await skopeo(['inspect', '--tls-verify=false', '--authfile', authfile, reference]);
    assert.ok(!anonymous.ok);
    assert.match(anonymous.output, /unauthorized|authentication required/i);
    const login = (password: string) =>
      skopeo(['login', '--tls-verify=false', '--authfile', authfile, '-u', 'ci', '-p', password, host]);
    const wrong = await login('nope');
    assert.ok(!wrong.ok, wrong.output);
    const right = await login(ADMIN_TOKEN);
    assert.ok(right.ok, right.output);
    const inspected = await skopeo(['inspect', '--tls-verify=false', '--authfile', authfile, reference]);
    assert.ok(inspected.ok, inspected.output);
    assert.equal((JSON.parse(inspected.output) as { Digest: string }).Digest, digests['old']);
    await guarded.core.audit.verify();
    const logins = await guarded.core.audit.query({ action: 'registry.login' });
    assert.ok(
      logins.events.some((e) => e.decision === 'deny'),
      'the wrong password is audited',
    );
    assert.ok(logins.events.some((e) => e.decision === 'allow' && e.actor === 'user:admin'));
  });
});
