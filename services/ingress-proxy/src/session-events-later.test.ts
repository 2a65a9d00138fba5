import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../../../core/src/bus/bus.js';
import { LocalBus } from '../../../core/src/bus/local-bus.js';
import { silentLogger } from '../../../core/src/log.js';
import type { AgateEvent, Command, Response } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { SessionEvents } from './session-events.js';

/*
 * SessionEvents.emitLater against the real embedded bus (fsync on): a Response's publish waits
 * until the bus waits for the disk, so the next statement's command is written first, and it
 * stays in session order with the events emitted after it.
 */
const dirs: string[] = [];
const later = suite('SessionEvents.emitLater');
later.after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const session_id = randomUUID();
const command = (): Command => ({ ...SAMPLES.Command, event_id: randomUUID(), session_id });
const response = (c: Command): Response => ({ ...SAMPLES.Response, event_id: randomUUID(), session_id, command_id: c.event_id });
const label = (e: AgateEvent) => (e.type === 'Command' ? `Command:${e.event_id}` : e.type === 'Verdict' || e.type === 'Response' ? `${e.type}:${e.command_id}` : e.type);

function openBus(): { bus: LocalBus; seen: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'agate-later-'));
  dirs.push(dir);
  const bus = new LocalBus({ dir, fsync: true, logger: silentLogger });
  bus.decideInline({ decide: (c) => [{ ...SAMPLES.Verdict, event_id: randomUUID(), session_id, command_id: c.event_id, decision: 'allow' }], written: () => undefined });
  const seen: string[] = [];
  bus.observe((e) => seen.push(label(e))); // in log order, once durable
  return { bus, seen };
}

async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(done(), what);
}

later('the next statement\'s command is written before the response; the response is durable soon after; later events stay behind it', async () => {
  const { bus, seen } = openBus();
  const events = new SessionEvents(bus, silentLogger);
  const first = command();
  assert.is((await bus.requestVerdict(first, 5_000)).kind, 'verdict');
  events.emitLater(response(first));
  const second = command();
  assert.is((await bus.requestVerdict(second, 5_000)).kind, 'verdict');
  await until('the response is recorded without another command', () => seen.includes(`Response:${first.event_id}`));
  assert.equal(seen, [`Command:${first.event_id}`, `Verdict:${first.event_id}`, `Command:${second.event_id}`, `Verdict:${second.event_id}`, `Response:${first.event_id}`]);
  // Emitted later, still recorded before what the session emits next.
  events.emitLater(response(second));
  await events.emitLogged({ ...SAMPLES.SessionClosed, event_id: randomUUID(), session_id });
  assert.equal(seen.slice(5), [`Response:${second.event_id}`, 'SessionClosed']);
  await bus.close();
});

later('statement after statement, the responses not yet durable stay at most two behind', async () => {
  const { bus, seen } = openBus();
  const events = new SessionEvents(bus, silentLogger);
  let behind = 0;
  for (let i = 0; i < 200; i++) {
    const c = command();
    await bus.requestVerdict(c, 5_000);
    await new Promise((r) => setTimeout(r, 0)); // the statement runs on the server
    events.emitLater(response(c));
    behind = Math.max(behind, i + 1 - seen.filter((l) => l.startsWith('Response:')).length);
  }
  assert.ok(behind <= 3, `${behind} responses were waiting (a backlog that grows)`);
  await events.drained();
  await bus.close();
});

later('with no command to wait for, the response is published within a few ms, and drained() waits for it', async () => {
  const { bus, seen } = openBus();
  const events = new SessionEvents(bus, silentLogger);
  const c = command();
  await bus.requestVerdict(c, 5_000);
  events.emitLater(response(c));
  const emitted = Date.now();
  await new Promise((r) => setImmediate(r));
  assert.not.ok(seen.includes(`Response:${c.event_id}`), 'not published in the turn it was emitted');
  await until('the response is recorded on the timer', () => seen.includes(`Response:${c.event_id}`));
  assert.ok(Date.now() - emitted < 500, `recorded ${Date.now() - emitted} ms after`);
  const d = command();
  await bus.requestVerdict(d, 5_000);
  events.emitLater(response(d));
  await events.drained();
  assert.ok(seen.includes(`Response:${d.event_id}`), 'drained() resolves once it is durable');
  await bus.close();
});

later('closing the bus records a response still waiting for the disk to be busy', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'agate-later-'));
  dirs.push(dir);
  const bus = new LocalBus({ dir, fsync: true, logger: silentLogger });
  const events = new SessionEvents(bus, silentLogger);
  const c = command();
  await bus.publish(c);
  events.emitLater(response(c));
  await bus.close();
  const reopened = new LocalBus({ dir, fsync: true, logger: silentLogger });
  const onDisk: string[] = [];
  await reopened.scanFrom(undefined, (e) => void onDisk.push(label(e)));
  assert.equal(onDisk, [`Command:${c.event_id}`, `Response:${c.event_id}`]);
  await reopened.close();
});

later('a bus that cannot say when it is idle (Kafka) publishes at once', async () => {
  const published: string[] = [];
  const bus = { publish: async (e: AgateEvent) => void published.push(label(e)) } as unknown as Bus;
  const events = new SessionEvents(bus, silentLogger);
  const c = command();
  events.emitLater(response(c));
  await Promise.resolve();
  assert.equal(published, [`Response:${c.event_id}`]);
});

later.run();
