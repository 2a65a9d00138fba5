import { test } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgateError } from '../../../../core/src/errors.js';
import { EmbeddedStore } from '../../../../core/src/store/embedded.js';
import { migrateQuery } from '../schema.js';
import { runAnalystSql } from '../sql-endpoint.js';
import { sessionEvents, testLedger } from '../test-ledger.js';
import { AnalystSandbox } from './sandbox.js';

/*
 * The sandbox when Agate does not run as root: run as root, this file runs itself again as
 * `nobody` (runuser) and checks that run passed; run as any other user, it builds a store and a
 * key of its own and checks the key is out of reach while the views answer.
 */
if (process.getuid?.() === 0) {
  test('as root: the same checks pass when run as the unprivileged user nobody', () => {
    const r = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, '--enable-source-maps', fileURLToPath(import.meta.url)], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: tmpdir() }, encoding: 'utf8', timeout: 120_000,
    });
    assert.is(r.status, 0, `${r.stdout}\n${r.stderr}`.slice(-2000));
    assert.match(r.stdout, /uid \d+ \(not root\)/);
    assert.match(r.stdout, /Passed:\s+1\b/);
  });
} else {
  test('not root: a key readable in-process is absent in the sandbox; the views answer', async () => {
    console.log(`uid ${process.getuid?.()} (not root)`);
    const dir = mkdtempSync(join(tmpdir(), 'agate-sandbox-user-'));
    const key = join(dir, 'ledger', 'checkpoint.key');
    mkdirSync(join(dir, 'ledger'), { mode: 0o700 });
    writeFileSync(key, 'agate-user-canary', { mode: 0o600 });
    const store = EmbeddedStore.open(join(dir, 'store'));
    const sandbox = AnalystSandbox.create(join(dir, 'store'), store);
    try {
      await (await testLedger(store)).append(sessionEvents('carol', 3));
      await migrateQuery(store);
      assert.is((await store.query<{ f: string }>(`SELECT file('${key}') AS f`))[0]?.f, 'agate-user-canary');
      const err = await sandbox.run((e) => e.query(`SELECT file('${key}') AS f`), 20_000).catch((e: AgateError) => e);
      assert.instance(err, AgateError);
      assert.match((err as AgateError).message, /No such file|Cannot open/);
      const limits = { max_execution_time_s: 5, max_result_rows: 100, max_memory_bytes: 1 << 28, sandbox: 'namespaces' as const };
      const { rows } = await sandbox.run((e) => runAnalystSql(e, 'SELECT subject, count() AS n FROM agate.commands GROUP BY subject', limits), 20_000);
      assert.equal(rows.map((r) => [r.subject, Number(r.n)]), [['carol', 3]]);
    } finally {
      sandbox.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
test.run();
