// Agate's own connection to the target over TLS with certificate verification (verify-full):
// PostgreSQL is switched to ssl=on with a throwaway CA-signed certificate.
import { test } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { chown, mkdtemp, rm, copyFile, chmod } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestCa } from '../harness/test-ca.js';
import { startAgate } from './agate-fixture.js';

test('verify-full: Agate checks the target certificate against the configured CA and encrypts', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'agate-uptls-'));
  // The CA file exists before the start: a start whose files are missing is refused (agate check's checks).
  const made = await makeTestCa(dir);
  const agate = await startAgate({ upstreamYaml: `tls: { mode: verify-full, ca: ${made.ca} }` });
  try {
    for (const [from, f] of [[made.server.cert, 'server.crt'], [made.server.key, 'server.key']] as const) {
      const to = join(agate.pg.dataDir, f);
      await copyFile(from, to);
      await chmod(to, 0o600);
      if (process.getuid?.() === 0) await chown(to, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
    }
    await agate.pg.psql("ALTER SYSTEM SET ssl = on; SELECT pg_reload_conf();");
    await new Promise((r) => setTimeout(r, 500));
    const c = await agate.client();
    try {
      const r = await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      assert.is(r.rows[0].ssl, true);
    } finally {
      await c.end();
    }
  } finally {
    await agate.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
