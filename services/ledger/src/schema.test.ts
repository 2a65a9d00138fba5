import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { KEEP_REPLACED_PARTS_S, migrate, TABLE_SETTINGS } from './schema.js';

/*
 * The ledger's tables carry their own durability settings: parts fsynced before an INSERT
 * returns, and parts a merge replaced kept as a ClickHouse server keeps them (the embedded
 * engine deletes them at once), on new tables and on tables an earlier version made.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-ledger-schema-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const TABLES = ['ledger', 'tree_nodes', 'checkpoints'];
const NAMES = ['old_parts_lifetime', 'fsync_after_insert', 'fsync_part_directory'];

/** Per ledger table, each setting's value in its DDL, or 'engine default'. */
async function settings(): Promise<Record<string, Record<string, string>>> {
  const rows = await store.query<{ name: string; engine_full: string }>("SELECT name, engine_full FROM system.tables WHERE database = 'agate'");
  return Object.fromEntries(rows.filter((r) => TABLES.includes(r.name)).map((r) => [r.name, Object.fromEntries(NAMES.map((n) => [n, new RegExp(`\\b${n} = (\\d+)`).exec(r.engine_full)?.[1] ?? 'engine default']))]));
}
const everywhere = (values: Record<string, string>) => Object.fromEntries(TABLES.map((t) => [t, values]));
const wanted = { old_parts_lifetime: String(KEEP_REPLACED_PARTS_S), fsync_after_insert: '1', fsync_part_directory: '1' };

test('the embedded engine itself deletes replaced parts at once and fsyncs no part, which is why the ledger sets its own', async () => {
  const rows = await store.query<{ name: string; value: string }>(`SELECT name, value FROM system.merge_tree_settings WHERE name IN (${NAMES.map((n) => `'${n}'`).join(', ')}) ORDER BY name`);
  assert.equal(Object.fromEntries(rows.map((r) => [r.name, r.value])), { fsync_after_insert: '0', fsync_part_directory: '0', old_parts_lifetime: '0' });
  assert.equal(Object.keys(TABLE_SETTINGS).sort(), [...NAMES].sort());
});

test('new ledger tables fsync their parts and keep replaced parts for KEEP_REPLACED_PARTS_S', async () => {
  await migrate(store);
  assert.equal(await settings(), everywhere(wanted));
});

test('tables made by an earlier version get the settings when migrated, and a second migration changes nothing', async () => {
  for (const t of TABLES) await store.exec(`ALTER TABLE agate.${t} RESET SETTING ${NAMES.join(', ')}`);
  assert.equal(await settings(), everywhere(Object.fromEntries(NAMES.map((n) => [n, 'engine default']))));
  await store.exec('ALTER TABLE agate.ledger MODIFY SETTING fsync_after_insert = 1'); // one already there
  await migrate(store);
  await migrate(store);
  assert.equal(await settings(), everywhere(wanted));
});

test.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
