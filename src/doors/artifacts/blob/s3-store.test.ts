import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, before, it } from 'node:test';
import { blobStoreContract } from './contract.ts';
import { createS3BlobStore } from './s3-store.ts';
import { hasLocalS3, LOCAL_S3_CREDENTIALS, type LocalS3, startLocalS3 } from './s3-server.ts';
import { EMPTY_SHA256, signV4 } from './sigv4.ts';

const available = hasLocalS3();
const skip = available ? false : 'moto_server (an S3-compatible server) is not on PATH';
let server: LocalS3 | undefined;

before(async () => {
  if (available) server = await startLocalS3();
});
after(async () => {
  await server?.close();
});

blobStoreContract(
  's3',
  async () => {
    assert.ok(server);
    const bucket = `gh-${randomUUID().slice(0, 8)}`;
    await server.createBucket(bucket);
    return createS3BlobStore({
      endpoint: server.endpoint,
      bucket,
      region: 'us-east-1',
      prefix: 'gatehouse/',
      partSize: 5 * 1024 * 1024,
      ...LOCAL_S3_CREDENTIALS,
    });
  },
  { large: 11 * 1024 * 1024, skip },
);

const hasBotocore = spawnSync('python3', ['-c', 'import botocore'], { stdio: 'ignore' }).status === 0;

void it('signs exactly like an independent SigV4 implementation (botocore)', {
  skip: hasBotocore ? false : 'python3 botocore not installed',
}, () => {
  const url = new URL('http://127.0.0.1:9000/bucket/some%20key/a%2Bb?uploadId=x%2Fy&partNumber=3');
  const creds = { accessKeyId: 'AKID', secretAccessKey: 'SECRET/KEY', region: 'eu-west-1', service: 's3' };
  const payloadHash = EMPTY_SHA256;
  const script = `
import sys
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
req = AWSRequest(method='PUT', url=sys.argv[1], headers={'content-type': 'application/octet-stream'})
S3SigV4Auth(Credentials('AKID', 'SECRET/KEY'), 's3', 'eu-west-1').add_auth(req)
print(req.headers['X-Amz-Date'])
print(req.headers['Authorization'])
`;
  const out = spawnSync('python3', ['-c', script, url.href], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  // botocore reads the wall clock, so sign with the timestamp it used.
  const [stamp = '', theirs = ''] = out.stdout.trim().split('\n');
  const when = new Date(
    stamp.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'),
  );
  const headers = { 'content-type': 'application/octet-stream' };
  const ours = signV4({ method: 'PUT', url, headers, payloadHash }, creds, when);
  assert.equal(ours['authorization'], theirs);
});

void it('rejects a wrong secret with a signature error from the server', { skip }, async () => {
  // moto does not check signatures, so this asserts only that error documents become GatewayErrors.
  assert.ok(server);
  const store = createS3BlobStore({
    endpoint: server.endpoint,
    bucket: 'no-such-bucket',
    region: 'us-east-1',
    ...LOCAL_S3_CREDENTIALS,
  });
  await assert.rejects(
    store.ping(),
    (error: Error & { code?: string }) => error.code === 'GW_ERR_ARTIFACTS_BLOB_STORE',
  );
});
