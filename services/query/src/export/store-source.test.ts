import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from '../../../../core/src/store/embedded.js';
import { SAMPLES } from '../../../../schemas/src/samples.js';
import type { OcsfEvent } from '../ocsf/map.js';
import { migrateQuery } from '../schema.js';
import { sessionEvents, testLedger } from '../test-ledger.js';
import { StoreExportSource } from './store-source.js';

/*
 * The export source reads the ledger in ranges and joins each response with its command and
 * verdict in memory. Reading in tiny batches with a fresh source each time forces every join
 * across reads (the command lies before the position), which must give the same events.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-export-source-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const source = suite('StoreExportSource');
source.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const strip = (e: OcsfEvent) => JSON.stringify(e);

source('one range read per batch; responses completed across batches and after a restart', async () => {
  const ledger = await testLedger(store);
  await migrateQuery(store);
  const a = sessionEvents('alice', 3);
  const b = sessionEvents('bob', 2);
  // Two sessions interleaved, and a refused login between them.
  const mixed = [a[0]!, b[0]!, a[1]!, b[1]!, { ...SAMPLES.AuthenticationFailed, event_id: 'f-1' }, ...a.slice(2), ...b.slice(2)];
  await ledger.append(mixed);
  const all = await new StoreExportSource(store).read('test', 0, 1000);
  // 2 logins + 1 refused login + 5 commands (one per response).
  assert.is(all.length, 8);
  assert.equal(all.map((e) => e.class_uid).sort(), [3002, 3002, 3002, 6005, 6005, 6005, 6005, 6005]);
  const first = all.find((e) => e.class_uid === 6005) as OcsfEvent & { query_info: { query_string: string }; disposition: string; src_endpoint: unknown };
  assert.is(first.query_info.query_string, 'SELECT 0 FROM items');
  assert.is(first.disposition, 'Blocked');
  assert.equal(first.src_endpoint, { ip: '10.0.0.3', port: 5432 });
  const seqs = all.map((e) => e.metadata.sequence);
  assert.equal(seqs, [...seqs].sort((x, y) => x - y));

  const paged: OcsfEvent[] = [];
  for (let after = 0; ;) {
    const batch = await new StoreExportSource(store).read('test', after, 1); // a new source knows no context
    if (batch.length === 0) break;
    paged.push(...batch);
    after = batch[batch.length - 1]!.metadata.sequence;
  }
  assert.equal(paged.map(strip), all.map(strip));
  assert.equal(await new StoreExportSource(store).read('test', seqs[seqs.length - 1]!, 10), []);
  // A position near the largest safe integer reads nothing rather than failing (a schemathesis find).
  assert.equal(await new StoreExportSource(store).read('test', Number.MAX_SAFE_INTEGER - 1, 500), []);
  await ledger.stop();
});

source('a chain whose first records expired is read from its first stored record', async () => {
  // The same records, 5,000 positions on, as after retention dropped the blocks before them.
  await store.exec(`INSERT INTO agate.ledger (chain_id, seq, event_id, event_type, session_id, time, body)
    SELECT 'late', seq + 5000, event_id, event_type, session_id, time, body FROM agate.ledger WHERE chain_id = 'test'`);
  const late = await new StoreExportSource(store).read('late', 0, 1000);
  const test = await new StoreExportSource(store).read('test', 0, 1000);
  assert.is(late.length, test.length);
  assert.equal(late.map((e) => e.metadata.sequence), test.map((e) => e.metadata.sequence + 5000));
});

source.run();
