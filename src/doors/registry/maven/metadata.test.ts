import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSnapshotMetadata, snapshotBuild } from './metadata.ts';

const doc = (inner: string, version = '2.1-SNAPSHOT') =>
  `<metadata><groupId>org.example</groupId><artifactId>app</artifactId><version>${version}</version><versioning>${inner}</versioning></metadata>`;

void describe('Maven snapshot metadata', () => {
  void it('reads the time and number a build name claims, and nothing else', () => {
    assert.deepEqual(snapshotBuild('2.1-20261204.101500-3'), {
      version: '2.1-SNAPSHOT',
      claimed: '2026-12-04T10:15:00Z',
      number: 3,
    });
    for (const name of [
      '2.1-SNAPSHOT',
      '2.1-20261204.1015-3',
      '2.1-20261204.101500-0',
      '2.1-20261204.101500',
      '20261204.101500-3',
    ])
      assert.equal(snapshotBuild(name), undefined, name);
  });

  void it('lists the builds of its own version, newest first', () => {
    const { builds } = parseSnapshotMetadata(
      doc(`<snapshot><timestamp>20261204.101500</timestamp><buildNumber>3</buildNumber></snapshot>
        <snapshotVersions>
          <snapshotVersion><extension>pom</extension><value>2.1-20261204.101500-3</value></snapshotVersion>
          <snapshotVersion><classifier>sources</classifier><extension>jar</extension><value>2.1-20261101.080000-1</value></snapshotVersion>
          <snapshotVersion><extension>jar</extension><value>2.1-20261204.101500-2</value></snapshotVersion>
          <snapshotVersion><extension>jar</extension><value>9.9-20261204.101500-9</value></snapshotVersion>
          <snapshotVersion><extension>jar</extension><value>2.1-SNAPSHOT</value></snapshotVersion>
        </snapshotVersions>`),
      'org.example',
      'app',
      '2.1-SNAPSHOT',
    );
    assert.deepEqual(builds, ['2.1-20261204.101500-3', '2.1-20261204.101500-2', '2.1-20261101.080000-1']);
    // A snapshot deployed without unique versions (localCopy) names no build.
    const local = parseSnapshotMetadata(
      doc('<snapshot><localCopy>true</localCopy></snapshot>'),
      'org.example',
      'app',
      '2.1-SNAPSHOT',
    );
    assert.deepEqual(local.builds, []);
  });

  void it('refuses metadata of another version or artifact, and entities', () => {
    assert.throws(
      () => parseSnapshotMetadata(doc('', '2.2-SNAPSHOT'), 'org.example', 'app', '2.1-SNAPSHOT'),
      SyntaxError,
    );
    assert.throws(() => parseSnapshotMetadata(doc(''), 'org.example', 'other', '2.1-SNAPSHOT'), SyntaxError);
    assert.throws(
      () =>
        parseSnapshotMetadata(
          '<!DOCTYPE x [<!ENTITY a "b">]><metadata/>',
          'org.example',
          'app',
          '2.1-SNAPSHOT',
        ),
      SyntaxError,
    );
  });
});
