// Agate's own connection to the target over TLS with certificate verification (verify-full):
// PostgreSQL is switched to ssl=on with a throwaway CA-signed certificate.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chown, mkdtemp, rm, copyFile, chmod } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeFailure, run } from '../harness/proc.js';
import { startAgate } from './agate-fixture.js';

async function openssl(args: string[]): Promise<void> {
  const r = await run('openssl', args, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(describeFailure('openssl', args, r));
}

test('verify-full: Agate checks the target certificate against the configured CA and encrypts', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'agate-uptls-'));
  const ca = join(dir, 'ca.pem');
  const agate = await startAgate({ upstreamYaml: `tls: { mode: verify-full, ca: ${ca} }` });
  try {
    const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    await openssl(['req', '-x509', ...ecKey, '-days', '1', '-subj', '/CN=agate test CA', '-keyout', join(dir, 'ca.key'), '-out', ca]);
    await openssl(['req', ...ecKey, '-subj', '/CN=127.0.0.1', '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr')]);
    await writeExt(join(dir, 'ext.cnf'));
    await openssl(['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', ca, '-CAkey', join(dir, 'ca.key'), '-CAcreateserial', '-days', '1', '-extfile', join(dir, 'ext.cnf'), '-out', join(dir, 'server.crt')]);
    for (const f of ['server.crt', 'server.key']) {
      const to = join(agate.pg.dataDir, f);
      await copyFile(join(dir, f), to);
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

async function writeExt(path: string): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  await writeFile(path, 'subjectAltName=IP:127.0.0.1\n');
}

test.run();
