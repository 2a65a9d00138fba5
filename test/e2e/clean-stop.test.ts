// A clean stop (SIGTERM, exit 0) right after `agate start` leaves the embedded store holding every
// record the log holds: the records a previous run left for the ledger, and the closing records
// the start-up recovery wrote for what that run cut. An analyst who queries the store right after
// the stop, or who never starts Agate again, sees everything the log holds.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalBus } from '../../core/src/bus/local-bus.js';
import { silentLogger } from '../../core/src/log.js';
import { EmbeddedStore } from '../../core/src/store/embedded.js';
import { EventCodec } from '../../schemas/src/codec.js';
import type { AgateEvent, Command } from '../../schemas/src/events.js';
import { SAMPLES } from '../../schemas/src/samples.js';
import { agateConfig, startAgateProcess } from './agate-process.js';
import { RestartableAgate } from './restartable-agate.js';
import { busLogBytes, logEvents } from './bus-log.js';

const env = new RestartableAgate({ prefix: 'agate-clean-stop-' });
const test = suite('clean stop: the store holds the whole log');

test.before(() => env.setUp());
test.after(() => env.tearDown());

/** Sessions of finished statements, as a previous run wrote them and no ledger stored yet. */
const FINISHED_SESSIONS = 200;
const STATEMENTS = 30;
/** Sessions the previous run left open, each with a forwarded command and no response. */
const CUT_SESSIONS = 40;

/** Writes a previous run's log straight to `dir/bus`: no ledger ever read it. */
async function previousRun(dir: string): Promise<void> {
  const bus = new LocalBus({ dir: join(dir, 'bus'), fsync: false, logger: silentLogger });
  const at = Date.now() * 1000;
  const session = async (id: string, statements: number, cut: boolean) => {
    const events: AgateEvent[] = [{ ...SAMPLES.SessionOpened, event_id: randomUUID(), session_id: id, time: at }];
    for (let i = 0; i < statements; i++) {
      const c: Command = { ...SAMPLES.Command, event_id: randomUUID(), session_id: id, time: at + i, text: `SELECT ${i}` };
      events.push(c, { ...SAMPLES.Verdict, event_id: randomUUID(), session_id: id, command_id: c.event_id, decision: 'allow', time: at + i });
      const last = i === statements - 1;
      if (!(cut && last)) events.push({ ...SAMPLES.Response, event_id: randomUUID(), session_id: id, command_id: c.event_id, outcome: 'observed', time: at + i });
    }
    if (!cut) events.push({ ...SAMPLES.SessionClosed, event_id: randomUUID(), session_id: id, time: at + statements });
    for (const e of events) await bus.publish(e);
  };
  const sessions: Promise<void>[] = [];
  for (let s = 0; s < FINISHED_SESSIONS; s++) sessions.push(session(randomUUID(), STATEMENTS, false));
  for (let s = 0; s < CUT_SESSIONS; s++) sessions.push(session(randomUUID(), 3, true));
  await Promise.all(sessions);
  await bus.close();
}

/** The record a start on `dir` leaves: the log's events (Checkpoints aside, which the ledger does not chain) against the store's. */
async function assertStoreHoldsLog(dir: string): Promise<void> {
  const logged = (logEvents(busLogBytes(join(dir, 'bus')), new EventCodec()) as AgateEvent[]).filter((e) => e.type !== 'Checkpoint');
  const unknown = logged.filter((e) => e.type === 'Response' && e.outcome === 'unknown').length;
  assert.is(unknown, CUT_SESSIONS, 'the start closed each cut command in the log');
  const store = EmbeddedStore.open(join(dir, 'store'));
  try {
    const [records] = await store.query<{ n: string }>('SELECT toString(count()) AS n FROM agate.ledger');
    const [stored] = await store.query<{ n: string }>("SELECT toString(count()) AS n FROM agate.responses WHERE outcome = 'unknown'");
    assert.is(Number(stored!.n), unknown, 'every closing Response of the start is stored');
    assert.is(Number(records!.n), logged.length, 'every record of the log is stored');
  } finally {
    await store.close();
  }
}

test('started on a log the store lacks and stopped at once: exit 0, and the store holds every record of the log, the closing ones included', async () => {
  const dir = join(env.work, 'lagging');
  await previousRun(dir);
  const agate = await env.start('', dir);
  const exit = await agate.stop(120_000);
  assert.equal(exit, { code: 0, signal: null }, `a clean stop\n${agate.stderr()}`);
  await assertStoreHoldsLog(dir);
});

test('SIGTERM the instant "agate started" is written: a clean stop (exit 0, not killed by the signal), and the store holds the whole log', async () => {
  const dir = join(env.work, 'at-once');
  await previousRun(dir);
  const base = agateConfig({ pg: env.pg, issuer: env.issuer });
  const hook = fileURLToPath(new URL('./stop-on-started.js', import.meta.url));
  const agate = await startAgateProcess({ configYaml: (p) => base(p).replace(/^data_dir: .*$/m, `data_dir: ${JSON.stringify(dir)}`), nodeArgs: ['--import', hook] });
  try {
    // It stops by itself: no second signal from here.
    for (const until = Date.now() + 120_000; agate.running && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
    assert.not.ok(agate.running, 'the process ended within 120 s of its own SIGTERM');
    const exit = await agate.stop();
    assert.equal(exit, { code: 0, signal: null }, `a clean stop, not the signal's default action\n${agate.stderr()}`);
    assert.ok(agate.logs().some((l) => l.msg === 'stopped'), 'it logged its clean stop');
  } finally {
    await agate.dispose();
  }
  await assertStoreHoldsLog(dir);
});

test.run();
