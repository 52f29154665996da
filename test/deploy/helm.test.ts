/**
 * The Helm chart (deploy/helm/gatehouse) rendered by scripts/render-chart.ts with several value
 * sets: every document must be valid YAML and valid against the Kubernetes schemas, keep the
 * security settings, name ports the configuration really listens on, and carry a
 * configuration and environment that the gateway's own loader accepts without a warning.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '#core/config';
import {
  goAvailable,
  type JsonMap,
  MANIFESTS_FILE,
  ROOT,
  type RenderedTemplate,
  renderChart,
  renderDefaultManifests,
} from '../../scripts/render-chart.ts';
import { checkGatehouseConfig, gatehouseConfigSchema } from '../../src/cli/config-schema.ts';
import { type K8sObject, validateObject } from './kubernetes.ts';

const skip = (await goAvailable())
  ? false
  : 'go is not installed (Debian package golang-go; .ci/run installs it): the chart cannot be rendered';

type Values = JsonMap;

/** Parses every document of the rendered templates (NOTES.txt aside). */
function documents(templates: readonly RenderedTemplate[]): K8sObject[] {
  const out: K8sObject[] = [];
  for (const template of templates) {
    if (template.name.endsWith('NOTES.txt')) continue;
    for (const doc of parseAllDocuments(template.content, { uniqueKeys: true })) {
      assert.deepEqual(doc.errors, [], `${template.name} is not valid YAML`);
      const value: unknown = doc.toJS();
      if (value === null) continue;
      out.push(value as K8sObject);
    }
  }
  return out;
}

async function render(values: Values = {}): Promise<K8sObject[]> {
  const objects = documents(await renderChart({ values }));
  for (const object of objects) validateObject(object);
  return objects;
}

function find(objects: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));
  assert.ok(found, `no ${kind}${name === undefined ? '' : ` named ${name}`} was rendered`);
  return found;
}

interface Container {
  name: string;
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { key: string; name: string } } }[];
  ports?: { name: string; containerPort: number }[];
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
}
interface Probe {
  httpGet?: { path: string; port: string | number; scheme?: string };
}
interface PodSpec {
  containers: Container[];
  volumes?: { name: string; emptyDir?: object; persistentVolumeClaim?: { claimName: string } }[];
  securityContext?: Record<string, unknown>;
  enableServiceLinks?: boolean;
  automountServiceAccountToken?: boolean;
}

function podSpec(objects: readonly K8sObject[]): PodSpec {
  const set = find(objects, 'StatefulSet');
  return (set.spec as { template: { spec: PodSpec } }).template.spec;
}

function gatehouseContainer(objects: readonly K8sObject[]): Container {
  const container = podSpec(objects).containers.find((c) => c.name === 'gatehouse');
  assert.ok(container, 'no gatehouse container');
  return container;
}

/** The ConfigMap's gatehouse.yaml as text. */
function configText(objects: readonly K8sObject[]): string {
  const text = (find(objects, 'ConfigMap').data as Record<string, string>)['gatehouse.yaml'];
  assert.ok(text !== undefined, 'the ConfigMap has no gatehouse.yaml');
  return text;
}

/** Values that look like what a Secret would hold, per key. */
const SECRET_SAMPLES: Record<string, string> = {
  'admin-password': 'correct-horse-battery-staple',
  'metrics-token': 'm'.repeat(40),
  'storage-url': 'postgres://gatehouse:pw@db.example.test:5432/gatehouse',
  'cache-url': 'redis://cache.example.test:6379',
  's3-access-key-id': 'AKIDEXAMPLE',
  's3-secret-access-key': 's3cr3t',
};

/**
 * Loads the rendered configuration the way the container does: the ConfigMap's file plus the
 * container's environment (Secret references replaced by sample values).
 */
async function loadRendered(objects: readonly K8sObject[]) {
  const env: Record<string, string> = {};
  for (const variable of gatehouseContainer(objects).env ?? []) {
    const key = variable.valueFrom?.secretKeyRef?.key;
    const value = variable.value ?? (key === undefined ? undefined : SECRET_SAMPLES[key]);
    assert.ok(value !== undefined, `environment variable ${variable.name} has no value or known Secret key`);
    env[variable.name] = value;
  }
  const loaded = await loadConfig(gatehouseConfigSchema, { text: configText(objects), env });
  assert.deepEqual(loaded.warnings, [], 'the gateway warns about the environment the chart sets');
  checkGatehouseConfig(loaded.config, 'the rendered ConfigMap');
  return { loaded, env };
}

function portOf(listen: string): number {
  return Number(listen.slice(listen.lastIndexOf(':') + 1));
}

/** Security settings every rendering keeps, and ports that match the configuration. */
async function assertHardenedAndConsistent(objects: readonly K8sObject[]): Promise<void> {
  const spec = podSpec(objects);
  assert.equal(spec.enableServiceLinks, false, 'service links inject GATEHOUSE_* variables');
  assert.equal(spec.automountServiceAccountToken, false);
  assert.equal(spec.securityContext?.['runAsNonRoot'], true);
  assert.deepEqual(spec.securityContext?.['seccompProfile'], { type: 'RuntimeDefault' });
  const container = gatehouseContainer(objects);
  const sc = container.securityContext ?? {};
  assert.equal(sc['runAsNonRoot'], true);
  assert.equal(sc['readOnlyRootFilesystem'], true);
  assert.equal(sc['allowPrivilegeEscalation'], false);
  assert.equal(sc['privileged'], false);
  assert.deepEqual((sc['capabilities'] as { drop: string[] }).drop, ['ALL']);
  assert.ok(
    Number(sc['runAsUser'] ?? spec.securityContext?.['runAsUser']) > 0,
    'runs as a numeric non-root user',
  );

  const { loaded, env } = await loadRendered(objects);
  const config = loaded.config;
  // Writable volumes where the read-only root file system needs them: the data folder and /tmp.
  const mounts = new Map((container.volumeMounts ?? []).map((m) => [m.mountPath, m]));
  assert.equal(env['GATEHOUSE_HOME'], config.home);
  for (const path of [config.home, '/tmp']) {
    const mount = mounts.get(path);
    assert.ok(mount, `nothing is mounted at ${path}`);
    assert.notEqual(mount.readOnly, true, `${path} must be writable`);
  }
  const configMount = mounts.get('/etc/gatehouse');
  assert.ok(configMount, 'the ConfigMap is not mounted as a folder at /etc/gatehouse');
  assert.equal(env['GATEHOUSE_CONFIG'], '/etc/gatehouse/gatehouse.yaml');

  // Ports: the container's named ports are the ones the configuration listens on.
  const ports = new Map((container.ports ?? []).map((p) => [p.name, p.containerPort]));
  assert.equal(ports.get('http'), portOf(config.server.listen));
  assert.ok(!config.server.listen.startsWith('127.'), 'the main listener must not be loopback-only');
  if (config.kv.enabled) {
    assert.equal(ports.get('kv'), portOf(config.kv.listen));
    assert.ok(!config.kv.listen.startsWith('127.'), 'the kv listener must not be loopback-only');
  } else {
    assert.equal(ports.has('kv'), false);
  }
  if (config.edge.enabled) {
    config.edge.listeners.forEach((listener, i) => assert.equal(ports.get(`edge-${i}`), listener.port));
  }
  for (const service of objects.filter((o) => o.kind === 'Service')) {
    for (const port of (service.spec as { ports: { targetPort: string }[] }).ports) {
      assert.ok(
        ports.has(port.targetPort),
        `Service ${service.metadata?.name} targets unknown port ${port.targetPort}`,
      );
    }
  }
  // Probes on the real health endpoints, through the named HTTP port.
  const scheme = config.server.tls.certFile === undefined ? 'HTTP' : 'HTTPS';
  for (const [probe, path] of [
    [container.startupProbe, '/healthz'],
    [container.livenessProbe, '/healthz'],
    [container.readinessProbe, '/readyz'],
  ] as const) {
    assert.deepEqual(probe?.httpGet, { path, port: 'http', scheme });
  }
}

/** Renders expecting a refusal whose message matches. */
async function assertRefused(values: Values, message: RegExp): Promise<void> {
  await assert.rejects(renderChart({ values }), message);
}

/** The pod template's configuration checksum for a value set. */
async function checksum(values: Values): Promise<string | undefined> {
  const set = find(await render(values), 'StatefulSet').spec as {
    template: { metadata: { annotations?: Record<string, string> } };
  };
  return set.template.metadata.annotations?.['checksum/config'];
}

/** The hosts the kv development certificate is issued for, in the rendered configuration. */
const hostsOf = async (values: Values) =>
  (await loadRendered(await render(values))).loaded.config.kv.tls.hosts;

describe('Helm chart', { skip }, () => {
  it('renders the defaults into valid, hardened manifests with a configuration the gateway accepts', async () => {
    const objects = await render();
    await assertHardenedAndConsistent(objects);
    assert.deepEqual(objects.map((o) => o.kind).toSorted(), [
      'ConfigMap',
      'Service',
      'Service',
      'ServiceAccount',
      'StatefulSet',
    ]);
    const set = find(objects, 'StatefulSet').spec as {
      volumeClaimTemplates?: { metadata: { name: string } }[];
    };
    assert.equal(set.volumeClaimTemplates?.[0]?.metadata.name, 'data');
  });

  it('keeps deploy/kubernetes/gatehouse.yaml equal to a fresh render of the defaults', async () => {
    const committed = await readFile(MANIFESTS_FILE, 'utf8');
    assert.equal(committed, await renderDefaultManifests(), 'run: node scripts/render-chart.ts --write');
  });

  it('renders every optional feature on', async () => {
    const objects = await render({
      replicaCount: 2,
      secrets: {
        adminPassword: 'correct-horse-battery-staple',
        metricsToken: 'm'.repeat(40),
        storageUrl: 'postgres://u:p@db:5432/g',
        cacheUrl: 'redis://cache:6379',
        s3AccessKeyId: 'id',
        s3SecretAccessKey: 'key',
      },
      config: {
        artifacts: {
          blobStore: { kind: 's3', s3: { endpoint: 'https://s3.example.test', bucket: 'gatehouse' } },
          encryption: { activeKey: 'k1' },
        },
        edge: { enabled: true, listeners: [{ id: 'public', port: 8443 }] },
        auth: {
          jwks: [
            {
              name: 'corp-sso',
              url: 'https://sso.example.test/jwks.json',
              issuer: 'https://sso.example.test/',
            },
          ],
        },
      },
      tls: {
        server: { existingSecret: 'gatehouse-server-tls', clientCaKey: 'ca.crt' },
        kv: { existingSecret: 'gatehouse-kv-tls', clientCaKey: 'ca.crt' },
      },
      encryption: { existingSecret: 'gatehouse-master-keys', keyIds: ['k1'] },
      signing: { existingSecret: 'gatehouse-signing' },
      extraCaCerts: { existingSecret: 'corp-ca' },
      ingress: {
        enabled: true,
        className: 'nginx',
        tls: [{ secretName: 'console-tls', hosts: ['gatehouse.example.test'] }],
      },
      serviceMonitor: { enabled: true },
      podDisruptionBudget: { enabled: true },
      autoscaling: { enabled: true },
      networkPolicy: { enabled: true, egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }] },
      service: { edge: { ports: { public: 443 } } },
    });
    await assertHardenedAndConsistent(objects);
    for (const kind of [
      'Ingress',
      'ServiceMonitor',
      'PodDisruptionBudget',
      'HorizontalPodAutoscaler',
      'NetworkPolicy',
      'Secret',
    ]) {
      find(objects, kind);
    }
    const edge = find(objects, 'Service', 'gatehouse-edge').spec as {
      ports: { port: number; targetPort: string }[];
    };
    assert.deepEqual(
      edge.ports.map((p) => [p.port, p.targetPort]),
      [[443, 'edge-0']],
    );
    const { loaded } = await loadRendered(objects);
    assert.equal(loaded.config.server.tls.certFile, '/etc/gatehouse-tls/server/tls.crt');
    assert.equal(loaded.config.kv.tls.clientCaFile, '/etc/gatehouse-tls/kv/ca.crt');
    const keys = loaded.config.artifacts.encryption.keys.map((k) => [k.id, k.file]);
    assert.deepEqual(keys, [['k1', '/etc/gatehouse-keys/encryption/k1']]);
    assert.equal(loaded.config.storage.url, SECRET_SAMPLES['storage-url']);
    // Every file path the configuration names lies under a mounted volume.
    const mounts = (gatehouseContainer(objects).volumeMounts ?? []).map((m) => m.mountPath);
    for (const file of [
      loaded.config.server.tls.certFile,
      loaded.config.kv.tls.keyFile,
      loaded.config.artifacts.signing.keyFile,
    ]) {
      assert.ok(file && mounts.some((m) => file.startsWith(`${m}/`)), `${file} is not on a mounted volume`);
    }
    const set = find(objects, 'StatefulSet').spec as { replicas?: number };
    assert.equal(set.replicas, undefined, 'the HPA owns the replica count');
    const monitor = find(objects, 'ServiceMonitor').spec as {
      endpoints: { authorization: { credentials: { key: string } } }[];
    };
    assert.equal(monitor.endpoints[0]?.authorization.credentials.key, 'metrics-token');
  });

  it('reads every credential from an existing Secret, optionally', async () => {
    const objects = await render({ secrets: { existingSecret: 'gatehouse-credentials' } });
    await assertHardenedAndConsistent(objects);
    assert.equal(
      objects.some((o) => o.kind === 'Secret'),
      false,
      'no Secret is created',
    );
    const refs = (gatehouseContainer(objects).env ?? []).filter((e) => e.valueFrom?.secretKeyRef);
    assert.deepEqual(refs.map((e) => e.name).toSorted(), [
      'GATEHOUSE_ARTIFACTS_BLOB_STORE_S3_ACCESS_KEY_ID',
      'GATEHOUSE_ARTIFACTS_BLOB_STORE_S3_SECRET_ACCESS_KEY',
      'GATEHOUSE_AUTH_ADMIN_PASSWORD',
      'GATEHOUSE_CACHE_URL',
      'GATEHOUSE_SERVER_METRICS_TOKEN',
      'GATEHOUSE_STORAGE_URL',
    ]);
    for (const ref of refs) assert.equal(ref.valueFrom?.secretKeyRef?.name, 'gatehouse-credentials');
  });

  it('uses an emptyDir without persistence and an existing claim when named', async () => {
    const off = await render({ persistence: { enabled: false } });
    await assertHardenedAndConsistent(off);
    const data = podSpec(off).volumes?.find((v) => v.name === 'data');
    assert.ok(data?.emptyDir, 'the data folder is an emptyDir');
    assert.equal(
      (find(off, 'StatefulSet').spec as { volumeClaimTemplates?: unknown }).volumeClaimTemplates,
      undefined,
    );

    const claim = await render({ persistence: { existingClaim: 'gatehouse-data' } });
    await assertHardenedAndConsistent(claim);
    assert.equal(
      podSpec(claim).volumes?.find((v) => v.name === 'data')?.persistentVolumeClaim?.claimName,
      'gatehouse-data',
    );
  });

  it('refuses value sets that cannot work, naming the value', async () => {
    await assertRefused({ replicaCount: 2 }, /replicaCount > 1 and autoscaling need PostgreSQL/);
    await assertRefused(
      { serviceMonitor: { enabled: true } },
      /serviceMonitor.enabled needs a metrics token/,
    );
    await assertRefused(
      { config: { edge: { enabled: true, listeners: [{ id: 'public', port: 443 }] } } },
      /"public": port 443 is below 1024/,
    );
    await assertRefused({ config: { server: { listen: null } } }, /config.server.listen is required/);
    await assertRefused({ rollOnConfigChange: 'sometimes' }, /rollOnConfigChange must be/);
    await assertRefused(
      {
        secrets: { storageUrl: 'postgres://u:p@db/g' },
        replicaCount: 2,
        persistence: { existingClaim: 'one' },
      },
      /persistence.existingClaim serves one replica/,
    );
  });

  it('rolls the pods on static configuration changes and hot-reloads dynamic ones', async () => {
    const base = await checksum({});
    assert.match(base ?? '', /^[0-9a-f]{64}$/);
    const dynamic = { config: { registry: { policy: { rules: [] } }, kv: { limits: { burst: 10 } } } };
    assert.equal(await checksum(dynamic), base, 'a dynamic key must not roll the pods');
    assert.notEqual(await checksum({ config: { server: { bodyLimit: '2MiB' } } }), base);
    assert.notEqual(await checksum({ tls: { kv: { existingSecret: 'kv-tls' } } }), base);
    assert.notEqual(
      await checksum({ ...dynamic, rollOnConfigChange: 'always' }),
      await checksum({ rollOnConfigChange: 'always' }),
    );
    assert.equal(await checksum({ rollOnConfigChange: 'never' }), undefined);
  });

  it('lists as dynamic exactly the top-most dynamic keys of docs/config.md', async () => {
    const doc = await readFile(join(ROOT, 'docs/config.md'), 'utf8');
    const reload = new Map<string, string>();
    for (const match of doc.matchAll(/^\| `([^`]+)` \|[^|]*\|[^|]*\| (dynamic|restart) \|/gm)) {
      reload.set(match[1] as string, match[2] as string);
    }
    assert.ok(reload.size > 100, 'docs/config.md has no key table');
    const topMost = [...reload]
      .filter(
        ([key, mode]) => mode === 'dynamic' && reload.get(key.slice(0, key.lastIndexOf('.'))) !== 'dynamic',
      )
      .map(([key]) => key)
      .toSorted();
    const helpers = await readFile(join(ROOT, 'deploy/helm/gatehouse/templates/_helpers.tpl'), 'utf8');
    const listed = /define "gatehouse.dynamicKeys" -}}\n(.*)\n/
      .exec(helpers)?.[1]
      ?.trim()
      .split(/\s+/)
      .toSorted();
    assert.deepEqual(listed, topMost);
  });

  it("issues the kv development certificate for the Service's names unless told otherwise", async () => {
    assert.deepEqual(await hostsOf({}), [
      'gatehouse',
      'gatehouse.gatehouse',
      'gatehouse.gatehouse.svc',
      'gatehouse.gatehouse.svc.cluster.local',
    ]);
    assert.deepEqual(await hostsOf({ clusterDomain: 'corp.internal', fullnameOverride: 'gh' }), [
      'gh',
      'gh.gatehouse',
      'gh.gatehouse.svc',
      'gh.gatehouse.svc.corp.internal',
    ]);
    assert.deepEqual(await hostsOf({ config: { kv: { tls: { hosts: ['kv.example.test'] } } } }), [
      'kv.example.test',
    ]);
    // An own certificate carries its own names: the gateway refuses kv.tls.hosts beside it.
    assert.deepEqual(await hostsOf({ tls: { kv: { existingSecret: 'kv-tls' } } }), []);
  });

  it('renders NOTES.txt with the kv certificate note', async () => {
    const notes = (await renderChart()).find((t) => t.name.endsWith('NOTES.txt'));
    assert.match(notes?.content ?? '', /clients must trust that CA/);
    assert.match(notes?.content ?? '', /Bootstrapped the admin account/);
  });
});
