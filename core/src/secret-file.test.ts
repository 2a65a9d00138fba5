import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateSigner } from '../../services/ledger/src/keys.js';
import { loadOrCreateHostKey } from '../../services/ingress-proxy/src/ssh/host-key.js';
import { devTrustedIssuer } from './identity/dev-issuer.js';
import { AgateError } from './errors.js';
import { createSecretFile, readSecretFile } from './secret-file.js';

/* Keys on disk: created 0600 in 0700 directories, looser ones tightened or refused. */
const secrets = suite('secret files');
const dir = mkdtempSync(join(tmpdir(), 'agate-secret-'));
const mode = (p: string) => statSync(p).mode & 0o7777;
secrets.after(() => rmSync(dir, { recursive: true, force: true }));

secrets('the checkpoint key, the dev issuer key and the SSH host key are created 0600 in new 0700 directories', async () => {
  const old = process.umask(0o000); // the most permissive umask must not loosen them
  try {
    const data = join(dir, 'data');
    loadOrCreateSigner(join(data, 'ledger', 'checkpoint.key'), 'agate.test/log');
    await devTrustedIssuer(data, 'agate');
    loadOrCreateHostKey(join(data, 'ssh', 'host_key'));
    for (const [d, f] of [['ledger', 'checkpoint.key'], ['dev-issuer', 'key.json'], ['ssh', 'host_key']]) {
      assert.is(mode(join(data, d!)).toString(8), '700', d);
      assert.is(mode(join(data, d!, f!)).toString(8), '600', f);
    }
  } finally {
    process.umask(old);
  }
});

secrets('an existing key readable by others is tightened to 0600 before it is used', () => {
  const sub = join(dir, 'loose');
  mkdirSync(sub, { mode: 0o700 });
  const key = join(sub, 'checkpoint.key');
  loadOrCreateSigner(key, 'agate.test/log');
  chmodSync(key, 0o644);
  loadOrCreateSigner(key, 'agate.test/log');
  assert.is(mode(key).toString(8), '600');
});

secrets('a symlink, or a directory others may write to, is refused with the path', () => {
  const target = join(dir, 'elsewhere.key');
  writeFileSync(target, 'x', { mode: 0o600 });
  const linkDir = join(dir, 'linked');
  mkdirSync(linkDir, { mode: 0o700 });
  symlinkSync(target, join(linkDir, 'key'));
  const e1 = catchAgate(() => readSecretFile(join(linkDir, 'key')));
  assert.is(e1.code, 'SECRET_FILE_UNSAFE');
  assert.ok(e1.message.includes(join(linkDir, 'key')));
  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const e2 = catchAgate(() => createSecretFile(join(open, 'key'), 'x'));
  assert.is(e2.code, 'SECRET_FILE_UNSAFE');
  assert.match(e2.message, /others may write/);
  assert.is(readFileSync(target, 'utf8'), 'x');
});

function catchAgate(f: () => unknown): AgateError {
  try {
    f();
  } catch (err) {
    if (err instanceof AgateError) return err;
    throw err;
  }
  throw new Error('not refused');
}
secrets.run();
