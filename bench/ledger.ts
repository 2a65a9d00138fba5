import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Bus } from '../core/src/bus/bus.js';
import { silentLogger } from '../core/src/log.js';
import { EmbeddedStore } from '../core/src/store/embedded.js';
import type { Store } from '../core/src/store/store.js';
import { EventCodec } from '../schemas/src/codec.js';
import type { AgateEvent } from '../schemas/src/events.js';
import { SAMPLES } from '../schemas/src/samples.js';
import { linkHash, recordColumns, GENESIS } from '../services/ledger/src/chain.js';
import { parseCheckpoint } from '../services/ledger/src/checkpoint.js';
import { CompactRange } from '../services/ledger/src/compact-range.js';
import { LedgerService } from '../services/ledger/src/ledger.js';
import { leafHash } from '../services/ledger/src/merkle.js';
import { generateSignerKey, parseSignerKey, parseVerifierKey, verifierKey } from '../services/ledger/src/note.js';
import { latestCheckpoint, proveInclusion } from '../services/ledger/src/prove.js';
import { verifyChain } from '../services/ledger/src/verify.js';

/*
 * The ledger on the embedded engine: events/s appended (encode, hash, tree, store) and events/s
 * verified (links, sequence, Merkle root against a signed checkpoint), store size per million.
 *   npm run bench -- ledger [--events N] [--batch N]
 */

const TARGET_APPEND = 100_000;
const TARGET_VERIFY = 1_000_000;

/** Realistic traffic: the six event types in turn, commands with varied text. */
function makeBatch(n: number, offset: number): AgateEvent[] {
  const types = Object.values(SAMPLES).filter((e) => e.type !== 'Checkpoint');
  return Array.from({ length: n }, (_, i) => {
    const base = types[(offset + i) % types.length]!;
    const session_id = `session-${Math.floor((offset + i) / 60)}`;
    const e = { ...base, event_id: randomUUID(), session_id, time: base.time + (offset + i) * 1000 } as AgateEvent;
    if (e.type === 'Command') e.text = `SELECT * FROM items WHERE id = ${offset + i} AND owner = 'agent-${i % 97}'`;
    return e;
  });
}

const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);
const fmt = (n: number) => n.toLocaleString('en-US');

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { events: { type: 'string', default: '1000000' }, batch: { type: 'string', default: '20000' } } });
  const total = Number(values.events);
  const batchSize = Number(values.batch);
  const dir = mkdtempSync(join(tmpdir(), 'agate-bench-ledger-'));
  const store = EmbeddedStore.open(join(dir, 'store'));
  const codec = new EventCodec();
  const signer = parseSignerKey(generateSignerKey('bench/ledger'));
  const bus = { publish: async () => {}, subscribe: async () => ({ close: async () => {} }) } as unknown as Bus;
  try {
    // 1. The JS part alone: encode and link hash, over pre-built events.
    const sample = makeBatch(100_000, 0);
    let t = performance.now();
    let prev: Buffer = GENESIS;
    sample.forEach((e, i) => {
      prev = linkHash(prev, i + 1, codec.encode(e), recordColumns(e));
    });
    const hashRate = rate(sample.length, performance.now() - t);
    // For scale: the same events hashed into a JS-side tree, which the ledger leaves to the engine.
    t = performance.now();
    const tree = new CompactRange();
    for (const e of sample) tree.push(leafHash(codec.encode(e)));
    const jsTreeRate = rate(sample.length, performance.now() - t);

    // 2. The whole append path into the embedded engine, in bus-sized batches.
    const ledger = new LedgerService({ bus, store, codec, chainId: 'bench', logger: silentLogger, signer, checkpoints: { everyEvents: 100_000, everyMs: 3_600_000, sinks: [] } });
    await ledger.start();
    let appendMs = 0;
    let makeMs = 0;
    for (let done = 0; done < total; done += batchSize) {
      let m = performance.now();
      const batch = makeBatch(Math.min(batchSize, total - done), done);
      makeMs += performance.now() - m;
      m = performance.now();
      await ledger.append(batch);
      appendMs += performance.now() - m;
    }
    t = performance.now();
    await ledger.checkpoint();
    appendMs += performance.now() - t;
    const appendRate = rate(total, appendMs);

    // 2b. The same path inserting TSV (what a store without RowBinary insert takes), on a second chain.
    const tsvTotal = Math.min(total, 200_000);
    const tsvStore: Store = {
      exec: (q) => store.exec(q), query: (q, p) => store.query(q, p), insert: (t2, r) => store.insert(t2, r),
      insertTsv: (t2, c, p) => store.insertTsv(t2, c, p), queryRowBinary: (q, p) => store.queryRowBinary(q, p), close: async () => {},
    };
    const tsvLedger = new LedgerService({ bus, store: tsvStore, codec, chainId: 'bench-tsv', logger: silentLogger, signer, checkpoints: { everyEvents: 100_000, everyMs: 3_600_000, sinks: [] } });
    await tsvLedger.start();
    let tsvMs = 0;
    for (let done = 0; done < tsvTotal; done += batchSize) {
      const batch = makeBatch(Math.min(batchSize, tsvTotal - done), done);
      const m = performance.now();
      await tsvLedger.append(batch);
      tsvMs += performance.now() - m;
    }
    t = performance.now();
    await tsvLedger.checkpoint();
    tsvMs += performance.now() - t;
    await tsvLedger.stop();
    await store.exec("ALTER TABLE agate.ledger DROP PARTITION tuple('bench-tsv', 0)");

    // 3. Full verification against the signed checkpoint at the head.
    const note = (await latestCheckpoint(store, 'bench'))!.note;
    const cp = parseCheckpoint(note.slice(0, note.indexOf('\n\n') + 1));
    const verifiers = [parseVerifierKey(verifierKey(signer))];
    t = performance.now();
    const report = await verifyChain(store, codec, 'bench', { checkpoints: [cp], verifiers, pageSize: 1 << 18 });
    const verifyMs = performance.now() - t;
    if (!report.ok || report.records !== total) throw new Error(`verification failed: ${JSON.stringify(report.failure)}`);

    // 4. Incremental: one more batch after a verified state.
    await ledger.append(makeBatch(batchSize, total));
    t = performance.now();
    const inc = await verifyChain(store, codec, 'bench', { resume: report.state! });
    const incMs = performance.now() - t;

    // 5. One inclusion proof in the full tree, and the store size.
    t = performance.now();
    await proveInclusion(store, sample.length > 0 ? (await store.query<{ event_id: string }>("SELECT event_id FROM agate.ledger WHERE chain_id = 'bench' AND seq = 12345"))[0]!.event_id : '', note);
    const proveMs = performance.now() - t;
    const [size] = await store.query<{ bytes: string; rows: string }>("SELECT sum(bytes_on_disk) AS bytes, sum(rows) AS rows FROM system.parts WHERE database = 'agate' AND table = 'ledger' AND active");
    const perMillion = (Number(size!.bytes) / Number(size!.rows)) * 1e6;

    const line = (what: string, value: string, target: string) => console.log(`${what.padEnd(44)} ${value.padStart(16)}   ${target}`);
    console.log(`ledger benchmark: ${fmt(total)} events in batches of ${fmt(batchSize)}, embedded engine (chdb), ${process.version}\n`);
    line('measure', 'result', 'target');
    line('append: encode + link hash only (JS)', `${fmt(hashRate)}/s`, '');
    line('(reference: encode + leaf + tree in JS)', `${fmt(jsTreeRate)}/s`, '');
    line('append: encode+hash+store+tree (RowBinary)', `${fmt(appendRate)}/s`, `>= ${fmt(TARGET_APPEND)}/s ${appendRate >= TARGET_APPEND ? 'met' : 'MISSED'}`);
    line(`append: same, TSV insert (${fmt(tsvTotal)} events)`, `${fmt(rate(tsvTotal, tsvMs))}/s`, '');
    line('verify: full, against signed checkpoint', `${fmt(rate(total, verifyMs))}/s`, `>= ${fmt(TARGET_VERIFY)}/s ${rate(total, verifyMs) >= TARGET_VERIFY ? 'met' : 'MISSED'}`);
    line(`verify: incremental (${fmt(inc.records)} new records)`, `${Math.round(incMs)} ms`, '');
    line('prove: one inclusion proof', `${Math.round(proveMs)} ms`, '');
    line('store size per million events', `${(perMillion / 2 ** 20).toFixed(1)} MiB`, '');
    const cols = await store.query<{ name: string; bytes: string }>("SELECT name, data_compressed_bytes AS bytes FROM system.columns WHERE database = 'agate' AND table = 'ledger' ORDER BY data_compressed_bytes DESC LIMIT 6");
    const mib = (b: string) => ((Number(b) / Number(size!.rows)) * 1e6 / 2 ** 20).toFixed(1);
    console.log(`  of which (MiB per million): ${cols.map((c) => `${c.name} ${mib(c.bytes)}`).join(', ')}; indexes and projections make up the rest`);
    console.log(`\n(test-data generation took ${Math.round(makeMs)} ms and is not counted)`);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
