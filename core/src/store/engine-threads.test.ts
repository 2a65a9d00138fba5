import { test } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from './embedded.js';

/*
 * The embedded engine's own threads run under SCHED_IDLE (nice 19 where chrt is missing), so a
 * woken proxy thread takes the core at once; Node's threads (the event loop, V8's helpers,
 * libuv's pool that runs the log's fdatasync) keep the ordinary policy.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-engine-threads-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const SCHED_OTHER = 0;
const SCHED_IDLE = 5;

interface ThreadView {
  tid: number;
  name: string;
  policy: number;
  nice: number;
}

function threads(): ThreadView[] {
  const out: ThreadView[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      const sched = readFileSync(`/proc/self/task/${tid}/sched`, 'utf8');
      const policy = Number(/^policy\s+:\s+(\d+)/m.exec(sched)?.[1]);
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
      out.push({ tid: Number(tid), name, policy, nice });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

const hasChrt = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v chrt']);
    return true;
  } catch {
    return false;
  }
})();

test('the engine threads give way; the event loop and every other Node thread keep the ordinary policy', async () => {
  // Work that grows the engine's pool, and a file operation that starts libuv's pool.
  await store.query('SELECT sum(number) AS s FROM numbers(20000000)');
  await readFile('/proc/self/stat');
  // The engine may start or name a thread after a look: the next look takes it.
  const givenWay = (t: ThreadView) => (hasChrt ? t.policy === SCHED_IDLE : t.nice === 19);
  let all: ThreadView[] = [];
  for (let look = 0; look < 5; look++) {
    await store.engineThreadsGiveWay();
    all = threads();
    if (all.every((t) => t.name === 'node' || givenWay(t))) break;
  }
  const engine = all.filter((t) => t.name !== 'node');
  const node = all.filter((t) => t.name === 'node');
  assert.ok(engine.length >= 3, `engine threads found: ${engine.map((t) => t.name).join(', ')}`);
  assert.ok(node.some((t) => t.tid === process.pid), 'the main thread is named node');
  // As the test was started (under `nice`, say).
  const nice = node.find((t) => t.tid === process.pid)!.nice;
  for (const t of node) assert.equal([t.tid, t.policy, t.nice], [t.tid, SCHED_OTHER, nice], `Node thread ${t.tid} untouched`);
  for (const t of engine) {
    if (hasChrt) assert.equal([t.name, t.policy], [t.name, SCHED_IDLE], `engine thread ${t.tid} (${t.name}) is SCHED_IDLE`);
    else assert.equal([t.name, t.nice], [t.name, 19], `engine thread ${t.tid} (${t.name}) has nice 19`);
  }
});

test('the engine answers after its threads gave way', async () => {
  const rows = await store.query<{ n: number }>('SELECT toUInt32(count()) AS n FROM numbers(1000)');
  assert.equal(rows, [{ n: 1000 }]);
});

test.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
