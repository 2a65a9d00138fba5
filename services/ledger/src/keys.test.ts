import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgateError, ErrorCode } from '../../../core/src/errors.js';
import { loadOrCreateSigner } from './keys.js';
import { verifierKey } from './note.js';

const dir = mkdtempSync(join(tmpdir(), 'agate-keys-'));
const keys = suite('checkpoint signing key');
keys.after(() => rmSync(dir, { recursive: true, force: true }));

keys('without create, a missing key file is an error and none is generated', () => {
  const path = join(dir, 'shared', 'checkpoint.key');
  const err = (() => {
    try {
      loadOrCreateSigner(path, 'agate.test/ledger', false);
    } catch (e) {
      return e;
    }
  })();
  assert.instance(err, AgateError);
  assert.is((err as AgateError).code, ErrorCode.LEDGER_KEY_INVALID);
  assert.match((err as AgateError).message, /does not exist/);
  assert.not.ok(existsSync(path));
});

keys('with create, the key is generated once and then read by every caller, created or not', () => {
  const path = join(dir, 'own', 'checkpoint.key');
  const made = loadOrCreateSigner(path, 'agate.test/ledger');
  assert.ok(existsSync(path));
  assert.is(verifierKey(loadOrCreateSigner(path, 'agate.test/ledger', false)), verifierKey(made));
  assert.is(verifierKey(loadOrCreateSigner(path, 'agate.test/ledger')), verifierKey(made));
});

keys.run();
