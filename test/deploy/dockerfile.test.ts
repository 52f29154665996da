/**
 * deploy/Dockerfile, read with a small line parser: pinned official base images, a non-root
 * numeric user, a health check on the real endpoint and port, sources that exist and are not
 * left out by .dockerignore, and the start command of `npm start`.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { ROOT } from '../../scripts/render-chart.ts';

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

/** Instructions with continuation lines joined; comments and blank lines dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i] ?? '';
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) {
      i++;
      const next = lines[i] ?? '';
      if (/^\s*#/.test(next)) continue;
      line = `${line.slice(0, -1)} ${next.trim()}`;
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    assert.ok(m, `Dockerfile line ${start + 1} is not an instruction: ${line}`);
    out.push({ keyword: (m[1] as string).toUpperCase(), args: (m[2] as string).trim(), line: start + 1 });
  }
  return out;
}

/** The JSON (exec) form of CMD, ENTRYPOINT or HEALTHCHECK CMD; the shell form is refused. */
function execForm(instruction: Instruction | undefined, args = instruction?.args): string[] {
  assert.ok(instruction && args !== undefined, 'instruction missing');
  assert.match(args, /^\[/, `line ${instruction.line}: use the exec (JSON) form so signals reach node`);
  return JSON.parse(args) as string[];
}

/** .dockerignore as a predicate (Docker's rules: last match wins, `!` re-includes, `**` any depth). */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, '');
      const source = pattern
        .split('/')
        .map((part) =>
          part === '**'
            ? '.*'
            : part
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(/\.\*\//g, '(?:.*/)?');
      return { negate, regex: new RegExp(`^${source}(?:/.*)?$`) };
    });
  return (path) => {
    let ignored = false;
    for (const rule of rules) if (rule.regex.test(path)) ignored = !rule.negate;
    return ignored;
  };
}

const dockerfile = parseDockerfile(await readFile(join(ROOT, 'deploy/Dockerfile'), 'utf8'));
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  devDependencies: Record<string, string>;
  engines: { node: string };
};
/** The port of a HOST:PORT listen address. */
const port = (listen: string) => listen.slice(listen.lastIndexOf(':') + 1);
const ignored = dockerignore(await readFile(join(ROOT, '.dockerignore'), 'utf8'));
const stages = dockerfile.filter((i) => i.keyword === 'FROM');
const final = dockerfile.slice(dockerfile.lastIndexOf(stages.at(-1) as Instruction));

describe('Dockerfile', () => {
  it('builds on pinned official Node images without a registry host name', async () => {
    assert.ok(stages.length >= 2, 'a multi-stage build');
    const installed = JSON.parse(
      await readFile(join(ROOT, 'node_modules/node/package.json'), 'utf8').catch(() => '{}'),
    );
    for (const stage of stages) {
      const image = stage.args.split(/\s+/)[0] ?? '';
      const m = /^node:(\d+)\.(\d+)\.(\d+)-[a-z]+-slim$/.exec(image);
      assert.ok(
        m,
        `line ${stage.line}: "${image}" must be node:<major.minor.patch>-<debian>-slim (pinned, no host name)`,
      );
      assert.equal(m[1], /\d+/.exec(pkg.engines.node)?.[0], `line ${stage.line}: Node major of engines.node`);
      if (typeof installed.version === 'string') {
        assert.equal(
          `${m[1]}.${m[2]}.${m[3]}`,
          installed.version,
          `line ${stage.line}: the Node version the repository pins`,
        );
      }
    }
  });

  it('runs the final stage as a numeric non-root user with the data folder as a volume', () => {
    const users = final.filter((i) => i.keyword === 'USER');
    assert.equal(users.length, 1);
    const [uid, gid] = (users[0]?.args ?? '').split(':');
    assert.match(uid ?? '', /^\d+$/, 'USER must be numeric so runAsNonRoot can check it');
    assert.notEqual(Number(uid), 0);
    assert.notEqual(Number(gid ?? 1), 0);
    const env = final
      .filter((i) => i.keyword === 'ENV')
      .map((i) => i.args)
      .join(' ');
    const home = /GATEHOUSE_HOME=(\S+)/.exec(env)?.[1];
    assert.ok(home, 'GATEHOUSE_HOME is set');
    assert.ok(
      final.some((i) => i.keyword === 'VOLUME' && i.args.includes(home)),
      `VOLUME ${home}`,
    );
    // No compilers or package installs in the runtime stage.
    const runs = final
      .filter((i) => i.keyword === 'RUN')
      .map((i) => i.args)
      .join('\n');
    assert.doesNotMatch(runs, /apt-get|npm (ci|install)|build-essential/);
  });

  it('exposes and health-checks the ports of the image configuration', async () => {
    const copy = final.find((i) => i.keyword === 'COPY' && i.args.endsWith('/etc/gatehouse/gatehouse.yaml'));
    assert.ok(copy, 'the image carries a default configuration at /etc/gatehouse/gatehouse.yaml');
    const env = final
      .filter((i) => i.keyword === 'ENV')
      .map((i) => i.args)
      .join(' ');
    assert.match(env, /GATEHOUSE_CONFIG=\/etc\/gatehouse\/gatehouse\.yaml/);
    const config = parse(await readFile(join(ROOT, copy.args.split(/\s+/)[0] as string), 'utf8')) as {
      server: { listen: string };
      kv: { listen: string };
    };
    const expose = final.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    assert.deepEqual(expose.toSorted(), [port(config.server.listen), port(config.kv.listen)].toSorted());
    const health = final.find((i) => i.keyword === 'HEALTHCHECK');
    const command = execForm(health, /CMD\s+(\[.*\])$/.exec(health?.args ?? '')?.[1]);
    assert.equal(command[0], 'node', 'the slim image has no curl or wget');
    assert.ok(
      command.join(' ').includes(`http://127.0.0.1:${port(config.server.listen)}/healthz`),
      'HEALTHCHECK asks /healthz on the main port',
    );
  });

  it('copies sources that exist and that .dockerignore lets through', () => {
    for (const copy of dockerfile.filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))) {
      const parts = copy.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const source of parts.slice(0, -1)) {
        const path = source.replace(/\/$/, '');
        assert.ok(existsSync(join(ROOT, path)), `line ${copy.line}: ${source} does not exist`);
        assert.equal(ignored(path), false, `line ${copy.line}: ${source} is excluded by .dockerignore`);
      }
    }
    for (const path of [
      '.git',
      'node_modules',
      'web/node_modules',
      'web/dist',
      'test/deploy',
      'bench',
      'src/testing',
      'src/cli/kv.test.ts',
      '.gatehouse',
    ]) {
      assert.equal(ignored(path), true, `.dockerignore must leave out ${path}`);
    }
    for (const path of ['src/main.ts', 'src/compile-cache.mjs', 'src/gen', 'package-lock.json', 'web/src']) {
      assert.equal(ignored(path), false, `.dockerignore must let ${path} through`);
    }
  });

  it('builds the console and installs production dependencies with npm ci', () => {
    const runs = dockerfile.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    assert.ok(
      runs.includes(pkg.scripts['prestart'] as string),
      `a stage runs prestart: ${pkg.scripts['prestart']}`,
    );
    assert.ok(
      runs.some((r) => /^npm ci\b.*--omit=dev/.test(r)),
      'npm ci --omit=dev',
    );
    assert.ok(
      final.some((i) => i.keyword === 'COPY' && /--from=\S+ \S*web\/dist\/? \S*web\/dist/.test(i.args)),
    );
  });

  it('starts the CLI the way npm start does', () => {
    const start = (pkg.scripts['start'] as string).split(/\s+/);
    const entrypoint = execForm(final.find((i) => i.keyword === 'ENTRYPOINT'));
    const cmd = execForm(final.find((i) => i.keyword === 'CMD'));
    assert.deepEqual([...entrypoint, ...cmd], start);
    assert.equal(
      final.find((i) => i.keyword === 'WORKDIR')?.args,
      '/app',
      'relative paths of npm start resolve in /app',
    );
  });
});
