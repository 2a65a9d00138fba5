import { test } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DURABLE_SETTINGS_SQL, DURABLE_TABLE_SETTINGS, durableSettingsOf, ensureDurable } from './durable-tables.js';
import { EmbeddedStore } from './embedded.js';

/*
 * The embedded engine fsyncs no part and deletes replaced parts at once; tables Agate records
 * into carry their own settings, given to tables an earlier version made by ensureDurable.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-durable-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const NAMES = Object.keys(DURABLE_TABLE_SETTINGS);
const wanted = Object.fromEntries(Object.entries(DURABLE_TABLE_SETTINGS).map(([k, v]) => [k, String(v)]));
const none = Object.fromEntries(NAMES.map((n) => [n, 'engine default']));

test('the embedded engine itself fsyncs no part and deletes replaced parts at once', async () => {
  const rows = await store.query<{ name: string; value: string }>(`SELECT name, value FROM system.merge_tree_settings WHERE name IN (${NAMES.map((n) => `'${n}'`).join(', ')})`);
  assert.equal(Object.fromEntries(rows.map((r) => [r.name, r.value])), Object.fromEntries(NAMES.map((n) => [n, '0'])));
});

test('a table made with the settings has them; one made without gets them, the missing ones only, once', async () => {
  await store.exec('CREATE DATABASE d');
  await store.exec(`CREATE TABLE d.new (x UInt8) ENGINE = MergeTree ORDER BY x SETTINGS ${DURABLE_SETTINGS_SQL}`);
  await store.exec('CREATE TABLE d.old (x UInt8) ENGINE = MergeTree ORDER BY x SETTINGS index_granularity = 128, fsync_after_insert = 1');
  assert.equal(await durableSettingsOf(store, 'd', 'new'), wanted);
  assert.equal(await durableSettingsOf(store, 'd', 'old'), { ...none, fsync_after_insert: '1' });
  await ensureDurable(store, 'd', ['old', 'new', 'absent']);
  await ensureDurable(store, 'd', ['old']);
  assert.equal(await durableSettingsOf(store, 'd', 'old'), wanted);
  const [t] = await store.query<{ engine_full: string }>("SELECT engine_full FROM system.tables WHERE database = 'd' AND name = 'old'");
  assert.match(t!.engine_full, 'index_granularity = 128', 'other settings stay');
  await store.exec('INSERT INTO d.old VALUES (1), (2)');
  assert.equal(await store.query('SELECT x FROM d.old ORDER BY x'), [{ x: 1 }, { x: 2 }]);
});

test.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
