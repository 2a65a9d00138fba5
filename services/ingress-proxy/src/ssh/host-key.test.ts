import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { fingerprint, hostKeyMatches, loadOrCreateHostKey, parsePinnedHostKey } from './host-key.js';

const pin = suite('ssh/host-key');
const blob = Buffer.from('0000000b7373682d65643235353139000000200102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20', 'hex');

pin('a whole pinned key matches only the same blob', () => {
  const p = parsePinnedHostKey(`ssh-ed25519 ${blob.toString('base64')} comment`);
  assert.ok(hostKeyMatches(p, blob));
  const other = Buffer.from(blob);
  other[other.length - 1] = 0;
  assert.not.ok(hostKeyMatches(p, other));
});

pin('a pinned fingerprint is compared in the OpenSSH form, padding ignored', () => {
  const fp = fingerprint(blob);
  assert.is(fp, 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, ''));
  assert.ok(hostKeyMatches(parsePinnedHostKey(fp + '='), blob));
  assert.not.ok(hostKeyMatches(parsePinnedHostKey('SHA256:' + 'A'.repeat(43)), blob));
});

pin('every generated host key is one the SSH server can load (ssh2 writes about 1 in 256 that it cannot read back)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agate-hostkey-'));
  try {
    for (let i = 0; i < 1500; i++) {
      const file = join(dir, `k${i}`, 'host_key');
      const key = ssh2.utils.parseKey(loadOrCreateHostKey(file));
      assert.not.instance(key, Error, `key ${i}: ${(key as Error).message}`);
      if (i === 0) assert.is(statSync(file).mode & 0o777, 0o600);
    }
    const file = join(dir, 'k0', 'host_key');
    assert.equal(loadOrCreateHostKey(file), loadOrCreateHostKey(file), 'an existing key is kept');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

pin.run();
