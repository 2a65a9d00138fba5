import { test } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DURABLE_TABLE_SETTINGS, durableSettingsOf, tableSettingsOf } from '../../../core/src/store/durable-tables.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { LEDGER_TABLE_SETTINGS, migrate } from './schema.js';

/*
 * The ledger's tables are durable (core/src/store/durable-tables.ts) and the ledger table merges
 * and deduplicates claimed inserts as LEDGER_TABLE_SETTINGS says, new or made by an earlier version.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-ledger-schema-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const TABLES = ['ledger', 'tree_nodes', 'checkpoints'];
const NAMES = Object.keys(DURABLE_TABLE_SETTINGS);
const wanted = Object.fromEntries(Object.entries(DURABLE_TABLE_SETTINGS).map(([k, v]) => [k, String(v)]));
const all = async () => Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, await durableSettingsOf(store, 'agate', t)])));
const everywhere = (values: Record<string, string>) => Object.fromEntries(TABLES.map((t) => [t, values]));
const MERGE_NAMES = Object.keys(LEDGER_TABLE_SETTINGS);
const merging = () => tableSettingsOf(store, 'agate', 'ledger', LEDGER_TABLE_SETTINGS);
const mergeWanted = Object.fromEntries(Object.entries(LEDGER_TABLE_SETTINGS).map(([k, v]) => [k, String(v)]));

test('new ledger tables fsync their parts and keep replaced parts', async () => {
  await migrate(store);
  assert.equal(await all(), everywhere(wanted));
  assert.equal(await merging(), mergeWanted);
});

test('tables made by an earlier version get the settings when migrated', async () => {
  for (const t of TABLES) await store.exec(`ALTER TABLE agate.${t} RESET SETTING ${NAMES.join(', ')}`);
  await store.exec(`ALTER TABLE agate.ledger RESET SETTING ${MERGE_NAMES.join(', ')}`);
  assert.equal(await all(), everywhere(Object.fromEntries(NAMES.map((n) => [n, 'engine default']))));
  assert.equal(await merging(), Object.fromEntries(MERGE_NAMES.map((n) => [n, 'engine default'])));
  await migrate(store);
  assert.equal(await all(), everywhere(wanted));
  assert.equal(await merging(), mergeWanted);
});

test.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
