import { test } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import type { Bus } from '../../../core/src/bus/bus.js';
import { silentLogger } from '../../../core/src/log.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { RowBinaryWriter } from '../../../core/src/store/row-binary.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { GENESIS, LINK_SQL, payloadLeaf, recordColumns, sealRow, writeRecord, writeRow, type RecordColumns } from './chain.js';
import { LedgerService } from './ledger.js';
import { hashBytes, hashText, leafHash } from './merkle.js';
import { generateSignerKey, parseSignerKey } from './note.js';
import { verifyChain } from './verify.js';

/*
 * The link is computed in JS over the RowBinary bytes and recomputed by the engine (LINK_SQL)
 * from the stored columns, for string lengths around every LEB128 width boundary.
 */
const codec = new EventCodec();
const dir = mkdtempSync(join(tmpdir(), 'agate-chain-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const signer = parseSignerKey(generateSignerKey('agate.test/chain'));
const bus = { publish: async () => {}, subscribe: async () => ({ close: async () => {} }) } as unknown as Bus;
const LENGTHS = [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152];
// target and event_type are LowCardinality: the engine must serialize them as the plain strings inserted.
const commands = (): AgateEvent[] => LENGTHS.map((n) => ({ ...SAMPLES.Command, event_id: randomUUID(), text: 'x'.repeat(n), target: 't'.repeat(Math.min(n, 16_384)) }) as AgateEvent);

/** A record's link computed the ledger's way: the row written first, sealed afterwards (as on its hashing thread). */
function sealedLink(seq: number, payload: Uint8Array, c: RecordColumns, prev: Uint8Array = GENESIS): Buffer {
  const w = new RowBinaryWriter(64);
  const slot = writeRow(w, 'c', seq, payload, c);
  const rows = w.view(0);
  return hashBytes(sealRow(rows, slot, w.length, payload.length, hashText(prev), payloadLeaf(rows, w.length, payload.length)));
}

/** The link as chain.ts defines it, from the written bytes: 0x02, prev_hash..body as inserted, the payload's leaf hash. */
function definedLink(row: Buffer, payload: Uint8Array, prev: Uint8Array): Buffer {
  const sourceBytes = 8; // source_next, outside the link
  const chainIdBytes = 1 + 1; // 'c' with its one-byte length
  const fromPrev = sourceBytes + chainIdBytes + 32;
  const bodyEnd = row.length - payload.length - (payload.length < 128 ? 1 : payload.length < 16_384 ? 2 : 3);
  assert.equal(row.subarray(fromPrev, fromPrev + 32), Buffer.from(prev), 'prev_hash follows the hash slot');
  return createHash('sha256').update(Buffer.of(0x02)).update(row.subarray(fromPrev, bodyEnd)).update(leafHash(payload)).digest();
}

test('a row written, then sealed, links as writeRecord does, and the link depends on every bound byte', () => {
  const e = commands()[3]!;
  const payload = codec.encode(e);
  const w = new RowBinaryWriter(64);
  const link = writeRecord(w, 'c', 7, GENESIS, payload, recordColumns(e));
  assert.equal(link, sealedLink(7, payload, recordColumns(e)));
  assert.not.equal(link, sealedLink(8, payload, recordColumns(e)));
  assert.not.equal(link, sealedLink(7, payload, { ...recordColumns(e), subject: 'someone else' }));
  assert.not.equal(link, sealedLink(7, payload, recordColumns(e), Buffer.alloc(32, 1)));
  assert.equal(w.view(0).subarray(w.length - payload.length), payload, 'the payload ends the row');
  assert.equal(link, definedLink(w.view(0), payload, GENESIS));
  assert.equal(w.view(0).subarray(10, 42), link, 'the row carries its link');
  const elsewhere = new RowBinaryWriter(64);
  assert.equal(writeRecord(elsewhere, 'c', 7, GENESIS, payload, recordColumns(e), 12_345), link, 'the source position is not bound');
  const changed = Buffer.from(payload);
  changed[changed.length - 1]! ^= 1;
  assert.not.equal(link, sealedLink(7, changed, recordColumns(e)), 'the payload is bound through its leaf hash');
});

test('a payload shorter than a hash at the end of the rows links the same way, and the row is left as written', () => {
  const e = commands()[1]!;
  const prev = Buffer.alloc(32, 7);
  for (const size of [0, 1, 31, 32, 200]) {
    const payload = Buffer.alloc(size, 0xab);
    const w = new RowBinaryWriter(64);
    const slot = writeRow(w, 'c', 3, payload, recordColumns(e));
    const before = Buffer.from(w.view(0));
    const rows = w.view(0);
    const link = hashBytes(sealRow(rows, slot, w.length, payload.length, hashText(prev), payloadLeaf(rows, w.length, payload.length)));
    assert.equal(link, definedLink(w.view(0), payload, prev), `payload of ${size} bytes`);
    assert.equal(w.view(0).subarray(slot + 64), before.subarray(slot + 64), `payload of ${size} bytes: nothing after prev_hash changed`);
    assert.equal(w.view(0).subarray(0, slot), before.subarray(0, slot));
  }
});

test('the engine recomputes every link, for strings of every LEB128 width', async () => {
  const chainId = 'chain-widths';
  const ledger = new LedgerService({ bus, store, codec, chainId, logger: silentLogger, signer });
  await ledger.start();
  await ledger.append(commands());
  const rows = await store.query<{ seq: string; n: string; t: string; ok: number }>(`SELECT seq, length(text) AS n, length(target) AS t, ${LINK_SQL} = hash AS ok FROM agate.ledger WHERE chain_id = {c:String} ORDER BY seq`, { c: chainId });
  assert.equal(rows.map((r) => [Number(r.n), Number(r.t), r.ok]), LENGTHS.map((n) => [n, Math.min(n, 16_384), 1]));
  const report = await verifyChain(store, codec, chainId);
  assert.ok(report.ok, JSON.stringify(report.failure));
  assert.is(report.records, LENGTHS.length);
  await ledger.stop();
});

test.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
