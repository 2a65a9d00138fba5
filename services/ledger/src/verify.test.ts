import { test } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Bus } from '../../../core/src/bus/bus.js';
import { silentLogger } from '../../../core/src/log.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { LINK_SQL } from './chain.js';
import { openCheckpoint, type Checkpoint } from './checkpoint.js';
import { LedgerService } from './ledger.js';
import { generateSignerKey, parseSignerKey, parseVerifierKey, verifierKey } from './note.js';
import { naiveMth } from './reference-mth.js';
import { verifyChain } from './verify.js';
import { rangeRoot, SUBTREE } from './tree-sql.js';
import { scanGroups } from './verify-scan.js';

/*
 * Verification over chains longer than one engine-hashed subtree (256 records): tampering
 * inside whole subtrees, checkpoints inside them, on their boundaries and in a partial tail,
 * pages that end mid-chain, and a resumed run that starts off a subtree boundary. (ledger.test.ts
 * covers the same failures on short chains.)
 */
const codec = new EventCodec();
const dir = mkdtempSync(join(tmpdir(), 'agate-verify-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const signer = parseSignerKey(generateSignerKey('agate.test/verify'));
const verifiers = [parseVerifierKey(verifierKey(signer))];
const bus = { publish: async () => {}, subscribe: async () => ({ close: async () => {} }) } as unknown as Bus;
const events = (n: number): AgateEvent[] => Array.from({ length: n }, (_, i) => ({ ...Object.values(SAMPLES)[i % 6]!, event_id: randomUUID() }) as AgateEvent);
const mutate = (sql: string) => store.exec(`${sql} SETTINGS mutations_sync = 2`);
let chains = 0;

/** A chain of n records with a signed checkpoint every 128 and at its head, as an auditor keeps them. */
async function chain(n: number): Promise<{ id: string; ledger: LedgerService; cps: Checkpoint[] }> {
  const id = `v${++chains}`;
  // One chain at a time: mutations visit every part of the table, and old chains only slow them.
  for (const table of ['ledger', 'tree_nodes', 'checkpoints']) await store.exec(`TRUNCATE TABLE IF EXISTS agate.${table}`);
  const notes: string[] = [];
  const ledger = new LedgerService({ bus, store, codec, chainId: id, logger: silentLogger, signer, checkpoints: { everyEvents: 128, everyMs: 600_000, sinks: [{ publish: async (cp) => void notes.push(cp.note) }] } });
  await ledger.start();
  const all = events(n);
  for (let i = 0; i < n; i += 128) await ledger.append(all.slice(i, i + 128));
  await ledger.checkpoint();
  return { id, ledger, cps: notes.map((note) => openCheckpoint(note, verifiers)) };
}

const verify = (id: string, cps: Checkpoint[], pageSize?: number) => verifyChain(store, codec, id, { checkpoints: cps, verifiers, pageSize });

test('an intact chain verifies against every checkpoint, in pages of any size; the root is the RFC 9162 root', async () => {
  const { id, cps } = await chain(1100);
  assert.equal(cps.map((c) => c.size), [128, 256, 384, 512, 640, 768, 896, 1024, 1100]);
  const payloads = await store.query<{ p: string }>('SELECT base64Encode(payload) AS p FROM agate.ledger WHERE chain_id = {c:String} ORDER BY seq', { c: id });
  const reference = naiveMth(payloads.map((row) => Buffer.from(row.p, 'base64'))).toString('hex');
  for (const page of [256, 512, 1 << 16]) {
    const r = await verify(id, cps, page);
    assert.ok(r.ok, JSON.stringify(r.failure));
    assert.is(r.records, 1100);
    assert.equal(r.checkpoints, cps.map((c) => c.size));
    assert.is(r.root, reference);
  }
});

test('a scan split in two aggregations reports what one aggregation does, around gaps and duplicates too', async () => {
  const { id } = await chain(1100);
  const same = async (what: string) => {
    for (const [lo, hi] of [[0, 1100], [5, 1100], [300, 1024], [0, 700], [256, 768]] as const) {
      const whole = await scanGroups(store, id, lo, hi, { splitFrom: Infinity });
      assert.equal(await scanGroups(store, id, lo, hi, { splitFrom: 0 }), whole, `${what}, (${lo}, ${hi}]`);
      assert.is(whole.length, Math.ceil(hi / SUBTREE) - Math.floor(lo / SUBTREE), `${what}: one entry per group`);
    }
  };
  await same('intact');
  // The split of (0, 1100] falls at 512: a gap and a duplicate on either side of it.
  await mutate(`ALTER TABLE agate.ledger DELETE WHERE chain_id = '${id}' AND seq IN (511, 513)`);
  await store.exec(`INSERT INTO agate.ledger SELECT * FROM agate.ledger WHERE chain_id = '${id}' AND seq IN (512, 600)`);
  await same('gaps and duplicates');
});

test('a modified field inside a whole subtree is found at its record', async () => {
  const { id, cps } = await chain(1100);
  await mutate(`ALTER TABLE agate.ledger UPDATE text = 'SELECT 1' WHERE chain_id = '${id}' AND seq = 300`);
  const r = await verify(id, cps);
  assert.equal([r.failure?.kind, r.failure?.seq], ['altered', 300]);
  assert.is(r.head.seq, 256, 'verified up to the subtree before it');
});

test('a deleted, an inserted and two swapped records are found at their places', async () => {
  const deleted = await chain(1100);
  await mutate(`ALTER TABLE agate.ledger DELETE WHERE chain_id = '${deleted.id}' AND seq = 700`);
  const d = await verify(deleted.id, deleted.cps, 512);
  assert.equal([d.failure?.kind, d.failure?.seq], ['missing', 700]);

  const inserted = await chain(1100);
  await store.exec(`INSERT INTO agate.ledger SELECT * REPLACE (toUInt64(400) AS seq, 'forged' AS event_id) FROM (SELECT * FROM agate.ledger WHERE chain_id = '${inserted.id}' AND seq = 900)`);
  const i = await verify(inserted.id, inserted.cps);
  assert.is(i.failure?.seq, 400);
  assert.ok(i.failure?.kind === 'inserted' || i.failure?.kind === 'altered', i.failure?.problem);

  const swapped = await chain(1100);
  await store.exec(`CREATE TABLE agate.swap ENGINE = Memory AS SELECT * REPLACE (if(seq = 300, toUInt64(305), toUInt64(300)) AS seq) FROM agate.ledger WHERE chain_id = '${swapped.id}' AND seq IN (300, 305)`);
  await mutate(`ALTER TABLE agate.ledger DELETE WHERE chain_id = '${swapped.id}' AND seq IN (300, 305)`);
  await store.exec('INSERT INTO agate.ledger SELECT * FROM agate.swap');
  await store.exec('DROP TABLE agate.swap');
  const s = await verify(swapped.id, swapped.cps);
  assert.equal([s.failure?.kind, s.failure?.seq], ['altered', 300]);
});

test('a truncated tail is found against the checkpoint', async () => {
  const { id, cps } = await chain(1100);
  await mutate(`ALTER TABLE agate.ledger DELETE WHERE chain_id = '${id}' AND seq > 1050`);
  const r = await verify(id, cps);
  assert.equal([r.failure?.kind, r.failure?.seq], ['truncated', 1051]);
});

test('a record rewritten with its link recomputed is caught by the signed root, in a whole subtree and in a partial one', async () => {
  for (const n of [1024, 1100]) {
    const { id, cps } = await chain(n);
    const other = codec.encode({ ...SAMPLES.Command, text: 'SELECT 2' }).toString('hex');
    await mutate(`ALTER TABLE agate.ledger UPDATE payload = unhex('${other}') WHERE chain_id = '${id}' AND seq = ${n}`);
    await mutate(`ALTER TABLE agate.ledger UPDATE hash = ${LINK_SQL} WHERE chain_id = '${id}' AND seq = ${n}`);
    assert.ok((await verifyChain(store, codec, id)).ok, 'the chain alone is self-consistent');
    const r = await verify(id, cps);
    assert.equal([r.failure?.kind, r.failure?.seq], ['rewritten', n], `${n}: ${r.failure?.problem}`);
  }
});

test('a checkpoint inside a whole subtree that the store no longer matches is reported at its size', async () => {
  const { id, cps } = await chain(1100);
  const forged = { ...cps[2]!, root: Buffer.alloc(32, 1) }; // size 384: inside the subtree 257..512
  const r = await verify(id, [forged, cps[cps.length - 1]!]);
  assert.equal([r.failure?.kind, r.failure?.seq], ['rewritten', 384]);
});

test('an incremental run resumes off a subtree boundary and reaches the same root', async () => {
  const { id, ledger } = await chain(300);
  const first = await verifyChain(store, codec, id);
  assert.ok(first.ok);
  for (let i = 0; i < 3; i++) await ledger.append(events(300), id);
  const second = await verifyChain(store, codec, id, { resume: first.state!, pageSize: 512 });
  assert.ok(second.ok, JSON.stringify(second.failure));
  assert.equal([second.from, second.records], [301, 900]);
  assert.is(second.root, (await ledger.currentRoot()).toString('hex'));
});

test('the writer stores each completed 256-leaf node as it grows its tree, equal to the root of the stored leaves', async () => {
  const { id, ledger } = await chain(1100);
  const nodes = await store.query<{ node: string; hash: string }>("SELECT node, hex(any(hash)) AS hash FROM agate.tree_nodes WHERE chain_id = {c:String} AND level = 8 GROUP BY node ORDER BY node", { c: id });
  assert.equal(nodes.map((n) => Number(n.node)), [0, 1, 2, 3]);
  for (const n of nodes) assert.is(n.hash.toLowerCase(), (await rangeRoot(store, id, Number(n.node) * 256, (Number(n.node) + 1) * 256)).toString('hex'), `node ${n.node}`);
  assert.is((await ledger.currentRoot()).toString('hex'), (await rangeRoot(store, id, 0, 1100)).toString('hex'));
});

test('after a restart the writer rebuilds its tree from the checkpoint and the records after it', async () => {
  const { id, ledger } = await chain(1000);
  await ledger.append(events(150), id); // 1,150 stored, last checkpoint at 1,024 (every 128)
  const again = new LedgerService({ bus, store, codec, chainId: id, logger: silentLogger, signer });
  await again.start();
  assert.is(again.head.seq, 1150);
  assert.ok((await again.currentRoot()).equals(await ledger.currentRoot()));
  await again.append(events(10));
  assert.ok((await again.currentRoot()).equals(await rangeRoot(store, id, 0, 1160)));
});

test.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
