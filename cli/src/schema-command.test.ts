import { suite } from '../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../core/src/package-root.js';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import { migrate } from '../../services/ledger/src/schema.js';
import { ANALYST_VIEWS, migrateQuery } from '../../services/query/src/schema.js';
import { run } from '../../test/harness/proc.js';
import { storeDdl } from './schema-command.js';

/*
 * `agate schema` for a single server, against the embedded ClickHouse engine: every printed
 * statement parses and runs on an empty store, and leaves nothing for the services' own
 * migrations to add or change.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-schema-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const objects = () => store.query<{ name: string; engine: string; q: string }>("SELECT name, engine, create_table_query AS q FROM system.tables WHERE database = 'agate' ORDER BY name");

const single = suite('agate schema (single server)');
single.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

single('the binary prints the statements, each ended by a semicolon', async () => {
  const r = await run(process.execPath, [join(packageRoot(), 'bin/agate.js'), 'schema', '--config', join(packageRoot(), 'deploy/agate.example.yaml')], { timeoutMs: 30_000 });
  assert.is(r.code, 0, r.stderr);
  const printed = r.stdout.split(';\n').map((s) => s.replace(/^(\s*--[^\n]*\n)*/, '').trim()).filter((s) => s !== '');
  assert.equal(printed, storeDdl());
});

single('every statement parses and runs on an empty store; the services then find nothing to add or change', async () => {
  for (const sql of storeDdl()) {
    const [formatted] = await store.query<{ f: string }>('SELECT formatQuery({q:String}) AS f', { q: sql });
    assert.ok(formatted!.f.startsWith('CREATE'), sql.slice(0, 60));
    await store.exec(sql);
  }
  const before = await objects();
  assert.ok(before.some((t) => t.name === 'ledger' && t.engine === 'MergeTree'));
  for (const view of ANALYST_VIEWS) assert.ok(before.some((t) => t.name === view), `analyst view ${view}`);
  assert.is(before.find((t) => t.name === 'checkpoints')?.engine, 'ReplacingMergeTree', 'the ledger table, not the query service placeholder');
  await migrate(store);
  await migrateQuery(store);
  assert.equal(await objects(), before);
});

single.run();
