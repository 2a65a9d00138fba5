import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { KEEP_REPLACED_PARTS_S, migrate } from './schema.js';

/*
 * The embedded engine deletes a part a merge replaced at once (old_parts_lifetime 0); the
 * ledger's tables keep them as a ClickHouse server does, so a merged part damaged by a power cut
 * can be replaced by the parts it was made from.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-ledger-schema-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const TABLES = ['ledger', 'tree_nodes', 'checkpoints'];

async function lifetimes(): Promise<Record<string, string>> {
  const rows = await store.query<{ name: string; engine_full: string }>("SELECT name, engine_full FROM system.tables WHERE database = 'agate' AND engine LIKE '%MergeTree'");
  return Object.fromEntries(rows.filter((r) => TABLES.includes(r.name)).map((r) => [r.name, /old_parts_lifetime = (\d+)/.exec(r.engine_full)?.[1] ?? 'engine default']));
}

test('the embedded engine itself deletes replaced parts at once, which is why the ledger sets its own lifetime', async () => {
  const [row] = await store.query<{ value: string }>("SELECT value FROM system.merge_tree_settings WHERE name = 'old_parts_lifetime'");
  assert.is(row?.value, '0');
});

test('new ledger tables keep replaced parts for KEEP_REPLACED_PARTS_S', async () => {
  await migrate(store);
  const expected = Object.fromEntries(TABLES.map((t) => [t, String(KEEP_REPLACED_PARTS_S)]));
  assert.equal(await lifetimes(), expected);
});

test('tables made by an earlier version get the setting when migrated, and a second migration changes nothing', async () => {
  for (const t of TABLES) await store.exec(`ALTER TABLE agate.${t} RESET SETTING old_parts_lifetime`);
  assert.equal(await lifetimes(), Object.fromEntries(TABLES.map((t) => [t, 'engine default'])));
  await migrate(store);
  await migrate(store);
  assert.equal(await lifetimes(), Object.fromEntries(TABLES.map((t) => [t, String(KEEP_REPLACED_PARTS_S)])));
});

test.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
