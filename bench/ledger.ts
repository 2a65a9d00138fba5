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
import { recordColumns, writeRecord, GENESIS } from '../services/ledger/src/chain.js';
import { RowBinaryWriter } from '../core/src/store/row-binary.js';
import { parseCheckpoint } from '../services/ledger/src/checkpoint.js';
import { CompactRange } from '../services/ledger/src/compact-range.js';
import { LedgerService } from '../services/ledger/src/ledger.js';
import { leafHash } from '../services/ledger/src/merkle.js';
import { generateSignerKey, parseSignerKey, parseVerifierKey, verifierKey } from '../services/ledger/src/note.js';
import { latestCheckpoint, proveInclusion } from '../services/ledger/src/prove.js';
import { verifyChain } from '../services/ledger/src/verify.js';

/*
 * The ledger on the embedded engine: events/s appended (link hash, tree, store, checkpoints) as
 * the embedded bus delivers them (each event with the bytes it travelled in), the same with the
 * ledger encoding each event and with TSV inserts, and events/s verified (links, sequence,
 * Merkle root against a signed checkpoint), store size per million.
 *   npm run bench -- ledger [--events N] [--batch N]
 */

const TARGET_APPEND = 100_000;
const TARGET_VERIFY = 1_000_000;
const SMALL_PAGE = 1 << 18;

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
    // 1. The JS part alone: encode, row and link hash, over pre-built events.
    const sample = makeBatch(100_000, 0);
    let t = performance.now();
    let prev: Buffer = GENESIS;
    let rows = new RowBinaryWriter(1 << 22);
    sample.forEach((e, i) => {
      if (i % 5000 === 0) rows = new RowBinaryWriter(1 << 22);
      prev = writeRecord(rows, 'bench', i + 1, prev, codec.encode(e), recordColumns(e));
    });
    const hashRate = rate(sample.length, performance.now() - t);
    // For scale: the same events hashed into a JS-side tree, which the ledger leaves to the engine.
    t = performance.now();
    const tree = new CompactRange();
    for (const e of sample) tree.push(leafHash(codec.encode(e)));
    const jsTreeRate = rate(sample.length, performance.now() - t);

    // 2. The whole append path into the embedded engine, in bus-sized batches, as the embedded
    // bus delivers them: each event with the encoding it travelled in (the bus's work, not counted).
    const ledger = new LedgerService({ bus, store, codec, chainId: 'bench', logger: silentLogger, signer, checkpoints: { everyEvents: 100_000, everyMs: 3_600_000, sinks: [] } });
    const appended = await appendChain(ledger, total, { encoded: true });
    const appendRate = rate(total, appended.ms);
    let makeMs = appended.makeMs;

    // 2b. The same from event objects (the ledger encodes: a bus that does not hand over its
    // bytes), and with TSV inserts (a store without RowBinary insert), on side chains.
    const sideTotal = Math.min(total, 200_000);
    const fromObjects = await appendChain(new LedgerService({ bus, store, codec, chainId: 'bench-obj', logger: silentLogger, signer }), sideTotal, { encoded: false });
    const tsvStore: Store = {
      exec: (q) => store.exec(q), query: (q, p) => store.query(q, p), insert: (t2, r) => store.insert(t2, r),
      insertTsv: (t2, c, p) => store.insertTsv(t2, c, p), queryRowBinary: (q, p) => store.queryRowBinary(q, p), close: async () => {},
    };
    const tsv = await appendChain(new LedgerService({ bus, store: tsvStore, codec, chainId: 'bench-tsv', logger: silentLogger, signer }), sideTotal, { encoded: true });
    makeMs += fromObjects.makeMs + tsv.makeMs;
    for (const side of ['bench-obj', 'bench-tsv']) await store.exec(`ALTER TABLE agate.ledger DROP PARTITION tuple('${side}', 0)`);

    /** Appends n events in batches and signs a checkpoint at the end; the time of both. */
    async function appendChain(service: LedgerService, n: number, opts: { encoded: boolean }): Promise<{ ms: number; makeMs: number }> {
      await service.start();
      let ms = 0;
      let made = 0;
      for (let done = 0; done < n; done += batchSize) {
        let m = performance.now();
        const batch = makeBatch(Math.min(batchSize, n - done), done);
        const encoded = opts.encoded ? batch.map((e) => codec.encode(e)) : undefined;
        made += performance.now() - m;
        m = performance.now();
        await service.append(batch, undefined, encoded);
        ms += performance.now() - m;
      }
      const m = performance.now();
      await service.checkpoint();
      ms += performance.now() - m;
      if (service !== ledger) await service.stop();
      return { ms, makeMs: made };
    }

    // 3. Full verification against the signed checkpoint at the head.
    const note = (await latestCheckpoint(store, 'bench'))!.note;
    const cp = parseCheckpoint(note.slice(0, note.indexOf('\n\n') + 1));
    const verifiers = [parseVerifierKey(verifierKey(signer))];
    t = performance.now();
    const report = await verifyChain(store, codec, 'bench', { checkpoints: [cp], verifiers });
    const verifyMs = performance.now() - t;
    if (!report.ok || report.records !== total) throw new Error(`verification failed: ${JSON.stringify(report.failure)}`);
    // The same in smaller pages (less engine memory, a fixed cost per page).
    t = performance.now();
    const small = await verifyChain(store, codec, 'bench', { checkpoints: [cp], verifiers, pageSize: SMALL_PAGE });
    const smallMs = performance.now() - t;
    if (!small.ok) throw new Error(`verification failed: ${JSON.stringify(small.failure)}`);

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
    line('append: encode + row + link hash only (JS)', `${fmt(hashRate)}/s`, '');
    line('(reference: encode + leaf + tree in JS)', `${fmt(jsTreeRate)}/s`, '');
    line('append: hash+store+tree, as the bus delivers', `${fmt(appendRate)}/s`, `>= ${fmt(TARGET_APPEND)}/s ${appendRate >= TARGET_APPEND ? 'met' : 'MISSED'}`);
    line(`append: same + encode (${fmt(sideTotal)} events)`, `${fmt(rate(sideTotal, fromObjects.ms))}/s`, '');
    line(`append: same, TSV insert (${fmt(sideTotal)} events)`, `${fmt(rate(sideTotal, tsv.ms))}/s`, '');
    line('verify: full, against signed checkpoint', `${fmt(rate(total, verifyMs))}/s`, `>= ${fmt(TARGET_VERIFY)}/s ${rate(total, verifyMs) >= TARGET_VERIFY ? 'met' : 'MISSED'}`);
    line(`verify: same, pages of 2^${Math.log2(SMALL_PAGE)} records`, `${fmt(rate(total, smallMs))}/s`, '');
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
