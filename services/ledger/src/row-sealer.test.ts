import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { RowBinaryWriter } from '../../../core/src/store/row-binary.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { GENESIS, recordColumns, writeRecord, writeRow } from './chain.js';
import { CompactRange } from './compact-range.js';
import { leafHash, rootFromLeafHashes } from './merkle.js';
import { RowSealer, type SealJob } from './row-sealer.js';

const codec = new EventCodec();
const events = (n: number): AgateEvent[] => Array.from({ length: n }, (_, i) => ({ ...Object.values(SAMPLES)[i % 6]!, event_id: randomUUID() }) as AgateEvent);

/** The ledger's half of a job: rows written with their links left open. */
function job(chain: string, batch: readonly AgateEvent[], firstSeq: number, from?: SealJob['from']): SealJob {
  const w = new RowBinaryWriter(256);
  const marks = new Int32Array(batch.length * 3);
  batch.forEach((e, j) => {
    const payload = codec.encode(e);
    marks[j * 3] = writeRow(w, chain, firstSeq + j, payload, recordColumns(e));
    [marks[j * 3 + 1], marks[j * 3 + 2]] = [w.length, payload.length];
  });
  const { memory, length } = w.transfer();
  return { chain, rows: memory, length, marks, firstSeq, from };
}

const start = { prev: GENESIS, frontier: [] };
const s = suite('RowSealer (worker thread)');

s('rows sealed on the worker equal rows written in one go, and jobs continue where the last ended', async () => {
  const sealer = new RowSealer();
  const batch = events(700);
  const [a, b] = await Promise.all([sealer.seal(job('c', batch.slice(0, 300), 1, start)), sealer.seal(job('c', batch.slice(300), 301))]);
  const expected = new RowBinaryWriter(256);
  let prev: Buffer = GENESIS;
  batch.forEach((e, i) => (prev = writeRecord(expected, 'c', i + 1, prev, codec.encode(e), recordColumns(e))));
  assert.equal(Buffer.concat([Buffer.from(a.rows, 0, a.length), Buffer.from(b.rows, 0, b.length)]), expected.finish());
  assert.equal(Buffer.from(b.head), prev, 'the head is the last link');
  const tree = CompactRange.fromJSON(b.frontier);
  assert.is(tree.size, 700);
  assert.equal(tree.root(), rootFromLeafHashes(batch.map((e) => leafHash(codec.encode(e)))));
  // 700 leaves complete two stored level-8 nodes (256 leaves each), the second in job b.
  assert.equal([...a.tiles, ...b.tiles].map((t) => [t.level, t.node]), [[8, 0], [8, 1]]);
  await sealer.close();
});

s('a job that does not follow its chain is refused, and a job that says where it starts is sealed after it', async () => {
  const sealer = new RowSealer();
  const failure = async (p: Promise<unknown>): Promise<{ code: string; message: string }> => {
    try {
      await p;
    } catch (err) {
      return err as { code: string; message: string };
    }
    throw new Error('sealed, but should have been refused');
  };
  let err = await failure(sealer.seal(job('unknown', events(3), 1)));
  assert.is(err.code, 'LEDGER_WORKER_FAILED');
  assert.match(err.message, /no head for chain unknown/);
  await sealer.seal(job('d', events(5), 1, start));
  err = await failure(sealer.seal(job('d', events(2), 9)));
  assert.match(err.message, /rows from 9 do not follow the chain's 5 records/);
  // The failed job left no head to continue from: a job must say where it starts again.
  assert.match((await failure(sealer.seal(job('d', events(2), 6)))).message, /no head for chain d/);
  const again = await sealer.seal(job('d', events(2), 1, start));
  assert.is(CompactRange.fromJSON(again.frontier).size, 2);
  await sealer.close();
});

s('jobs still out when the sealer closes fail instead of hanging', async () => {
  const sealer = new RowSealer();
  const outcome = sealer.seal(job('e', events(2000), 1, start)).then(() => 'sealed', (err: { code: string }) => err.code);
  await sealer.close();
  assert.is(await outcome, 'LEDGER_WORKER_FAILED');
  // A closed sealer starts a new thread when used again.
  assert.is(CompactRange.fromJSON((await sealer.seal(job('e', events(2), 1, start))).frontier).size, 2);
  await sealer.close();
});

s('a started, idle sealer does not keep the process alive', () => {
  const script = `import { RowSealer } from ${JSON.stringify(new URL('./row-sealer.js', import.meta.url).href)};
    const s = new RowSealer(); s.start(); console.log('started');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 15_000, encoding: 'utf8' });
  assert.is(r.stdout.trim(), 'started');
  assert.is(r.signal, null, 'the process had to be killed');
  assert.is(r.status, 0);
});

s.run();
