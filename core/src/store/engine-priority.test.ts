import { test } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedStore } from './embedded.js';

/*
 * The embedded engine's threads keep the process's own scheduling. Under SCHED_IDLE (tried for
 * issue 21's 1-client p99) any other job on the host, even one under `nice 10`, starved the
 * store: a query ran 7-17x longer beside a nice-10 compile, and the console's inclusion proof
 * timed out in CI. docs/operating.md, "CPU priority of the embedded store".
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-engine-priority-'));
const store = EmbeddedStore.open(join(dir, 'store'));

test('after work that grows its pool, every engine thread runs under the ordinary policy, none below the process priority', async () => {
  await store.query('SELECT sum(number) AS s FROM numbers(20000000)');
  await store.exec('CREATE TABLE t (n UInt64) ENGINE = MergeTree ORDER BY n');
  await store.insert('t', [{ n: 1 }, { n: 2 }]);
  const self = readFileSync('/proc/self/stat', 'utf8');
  const processNice = Number(self.slice(self.lastIndexOf(')') + 2).split(' ')[16]);
  const seen: string[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    let name: string, sched: string, stat: string;
    try {
      name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      sched = readFileSync(`/proc/self/task/${tid}/sched`, 'utf8');
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    if (name === 'node') continue;
    seen.push(name);
    const policy = Number(/^policy\s+:\s+(\d+)/m.exec(sched)?.[1]);
    const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    assert.is(policy, 0, `engine thread ${name} (${tid}) runs under policy ${policy}`);
    // The engine raises a few of its own (MemoryWorker runs at -20 when allowed); none is lowered.
    assert.ok(nice <= processNice, `engine thread ${name} (${tid}) runs at nice ${nice}, below the process's ${processNice}`);
  }
  assert.ok(seen.length > 0, 'no engine thread found: the check looked at nothing');
});

test.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
