import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Bus } from '../core/src/bus/bus.js';
import { silentLogger } from '../core/src/log.js';
import { EmbeddedStore } from '../core/src/store/embedded.js';
import { EventCodec } from '../schemas/src/codec.js';
import type { AgateEvent } from '../schemas/src/events.js';
import { SAMPLES } from '../schemas/src/samples.js';
import { GENESIS, recordColumns, writeRow } from '../services/ledger/src/chain.js';
import { RowBinaryWriter } from '../core/src/store/row-binary.js';
import { parseCheckpoint } from '../services/ledger/src/checkpoint.js';
import { CompactRange } from '../services/ledger/src/compact-range.js';
import { hashText } from '../services/ledger/src/merkle.js';
import { LEDGER_IN_FLIGHT, LedgerService } from '../services/ledger/src/ledger.js';
import { sealRows } from '../services/ledger/src/seal.js';
import { generateSignerKey, parseSignerKey, parseVerifierKey, verifierKey } from '../services/ledger/src/note.js';
import { latestCheckpoint, proveInclusion } from '../services/ledger/src/prove.js';
import { verifyChain } from '../services/ledger/src/verify.js';

/*
 * The ledger on the embedded engine: events/s appended (link hash, tree, store, checkpoints) as
 * the embedded bus delivers them (each event with the bytes it travelled in), the same with the
 * ledger encoding each event, and events/s verified (links, sequence,
 * Merkle root against a signed checkpoint), store size per million.
 *   npm run bench -- ledger [--events N] [--batch N]
 */

const TARGET_APPEND = 100_000;
const TARGET_VERIFY = 1_000_000;
/** Events built ahead of the clock at a time. */
const CHUNK = 200_000;
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

/**
 * The ledger's JS work alone, over pre-built events, in its two halves: writing rows (encode,
 * JSON body, row; on the event loop) and sealing them (link, leaf and tree hashes; on the
 * ledger's hashing thread). In the embedded mode the bus hands over the encoding. In a function
 * of its own so its 100,000 events and 80 MiB of rows are garbage before the append is timed.
 */
function jsAlone(codec: EventCodec): { writeRate: number; sealRate: number } {
  const sample = makeBatch(100_000, 0);
  let t = performance.now();
  const written = [];
  for (let i = 0; i < sample.length; i += 10_000) {
    const w = new RowBinaryWriter(1 << 23);
    const marks = new Int32Array(30_000);
    for (let j = 0; j < 10_000; j++) {
      const e = sample[i + j]!;
      const payload = codec.encode(e);
      marks[j * 3] = writeRow(w, 'bench', i + j + 1, payload, recordColumns(e));
      [marks[j * 3 + 1], marks[j * 3 + 2]] = [w.length, payload.length];
    }
    written.push({ rows: w.view(0), marks });
  }
  const writeRate = rate(sample.length, performance.now() - t);
  t = performance.now();
  const state = { prev: hashText(GENESIS), tree: new CompactRange() };
  written.forEach(({ rows, marks }, k) => sealRows(rows, marks, k * 10_000 + 1, state));
  const sealRate = rate(sample.length, performance.now() - t);
  return { writeRate, sealRate };
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
    // 1. The ledger's JS work alone (jsAlone).
    const { writeRate, sealRate } = jsAlone(codec);
    let t: number;

    // 2. The whole append path into the embedded engine, in bus-sized batches, as the embedded
    // bus delivers them: each event with the encoding it travelled in (the bus's work, not counted).
    const ledger = new LedgerService({ bus, store, codec, chainId: 'bench', logger: silentLogger, signer, checkpoints: { everyEvents: 100_000, everyMs: 3_600_000, sinks: [] } });
    const appended = await appendChain(ledger, total, { encoded: true });
    const appendRate = rate(total, appended.ms);
    let makeMs = appended.makeMs;

    // 2b. The same from event objects (the ledger encodes: a bus that does not hand over its
    // bytes), on a side chain.
    const sideTotal = Math.min(total, 200_000);
    const fromObjects = await appendChain(new LedgerService({ bus, store, codec, chainId: 'bench-obj', logger: silentLogger, signer }), sideTotal, { encoded: false });
    makeMs += fromObjects.makeMs;
    await store.exec("ALTER TABLE agate.ledger DROP PARTITION tuple('bench-obj', 0)");

    /** Appends n events in batches and signs a checkpoint at the end; the time of both. */
    async function appendChain(service: LedgerService, n: number, opts: { encoded: boolean }): Promise<{ ms: number; makeMs: number }> {
      await service.start();
      // Built before the clock starts (making them would take the event loop from the ledger),
      // CHUNK events at a time: a bus holds a window of recent events, not the whole run, and the
      // benchmark's own memory stays bounded.
      let ms = 0;
      let made = 0;
      for (let start = 0; start < n; start += CHUNK) {
        let m = performance.now();
        const batches: [AgateEvent[], Buffer[] | undefined][] = [];
        for (let done = start; done < Math.min(n, start + CHUNK); done += batchSize) {
          const batch = makeBatch(Math.min(batchSize, n - done), done);
          batches.push([batch, opts.encoded ? batch.map((e) => codec.encode(e)) : undefined]);
        }
        made += performance.now() - m;
        // Handed over as the embedded bus hands the ledger its batches: up to LEDGER_IN_FLIGHT at once.
        m = performance.now();
        const held: Promise<void>[] = [];
        for (const [batch, encoded] of batches) {
          held.push(service.append(batch, undefined, encoded));
          if (held.length >= LEDGER_IN_FLIGHT) await held.shift();
        }
        await Promise.all(held);
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
    const [proved] = await store.query<{ event_id: string }>("SELECT event_id FROM agate.ledger WHERE chain_id = 'bench' AND seq = 12345");
    await proveInclusion(store, proved!.event_id, note);
    const proveMs = performance.now() - t;
    const [size] = await store.query<{ bytes: string; rows: string }>("SELECT sum(bytes_on_disk) AS bytes, sum(rows) AS rows FROM system.parts WHERE database = 'agate' AND table = 'ledger' AND active");
    const perMillion = (Number(size!.bytes) / Number(size!.rows)) * 1e6;

    const line = (what: string, value: string, target: string) => console.log(`${what.padEnd(44)} ${value.padStart(16)}   ${target}`);
    console.log(`ledger benchmark: ${fmt(total)} events in batches of ${fmt(batchSize)}, embedded engine (chdb), ${process.version}\n`);
    line('measure', 'result', 'target');
    line('append, JS alone: encode + JSON + row', `${fmt(writeRate)}/s`, '');
    line('append, JS alone: link + leaf + tree hashes', `${fmt(sealRate)}/s`, '');
    line('append: hash+store+tree, as the bus delivers', `${fmt(appendRate)}/s`, `>= ${fmt(TARGET_APPEND)}/s ${appendRate >= TARGET_APPEND ? 'met' : 'MISSED'}`);
    line(`append: same + encode (${fmt(sideTotal)} events)`, `${fmt(rate(sideTotal, fromObjects.ms))}/s`, '');
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
