import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { KafkaBus } from '../../../core/src/bus/kafka-bus.js';
import { SingleObjectWire } from '../../../core/src/bus/single-object-wire.js';
import { createLogger } from '../../../core/src/log.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent, Command } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { startKafka, type KafkaBroker } from '../../../test/harness/kafka.js';
import { SessionEvents, UNRECORDABLE_RULE } from './session-events.js';

/*
 * A session's events against a real Kafka broker that goes away: the response of a statement
 * that ran, and the session's close, wait for the broker and are recorded in order once it is
 * back (they were logged and lost before: test/e2e/distributed.test.ts caught it).
 */
const codec = new EventCodec();
let broker: KafkaBroker;
const buses: KafkaBus[] = [];
const ready = startKafka().then((b) => void (broker = b));
ready.catch(() => undefined); // each test awaits it and reports the failure

async function bus(instanceId: string, topic: string): Promise<KafkaBus> {
  await ready;
  const b = await KafkaBus.connect({
    brokers: [broker.bootstrap], instanceId, groupPrefix: topic, eventsTopic: topic, verdictsTopic: `${topic}.verdicts`, partitions: 1, replicationFactor: 1,
    wire: new SingleObjectWire(codec), logger: createLogger('error', {}, () => {}), awaitsVerdicts: false,
  });
  buses.push(b);
  return b;
}

function logs(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, logger: createLogger('info', {}, (l) => lines.push(l)) };
}

const events = suite('SessionEvents');
events.after(async () => {
  for (const b of buses) await b.close().catch(() => undefined);
  await broker?.destroy();
});

events('a bus that is closed for good refuses at once: the event is logged as lost, not retried', async () => {
  const b = await bus('closed', 'closed');
  await b.close();
  const { lines, logger } = logs();
  const started = Date.now();
  await new SessionEvents(b, logger, { firstDelayMs: 1_000, maxDelayMs: 1_000, giveUpAfterMs: 60_000 }).emitLogged({ ...SAMPLES.SessionClosed, event_id: randomUUID() });
  assert.ok(Date.now() - started < 1_000, 'BUS_CLOSED is not retriable');
  assert.ok(lines.some((l) => l.includes('cannot record an event') && l.includes('BUS_CLOSED')), lines.join('\n'));
});

// Last: it stops the broker.
events('events refused while the broker is away are retried in place and recorded in session order when it is back; a command refused because it could not be recorded is recorded too, with its verdict', async () => {
  const b = await bus('proxy', 'session-events');
  const { lines, logger } = logs();
  const session = new SessionEvents(b, logger, { firstDelayMs: 50, maxDelayMs: 1_000, giveUpAfterMs: 180_000 });
  const session_id = `s-${randomUUID()}`;
  const command = { ...SAMPLES.Command, event_id: randomUUID(), session_id, text: 'SELECT 1' } as AgateEvent;
  const response = { ...SAMPLES.Response, event_id: randomUUID(), session_id, command_id: command.event_id } as AgateEvent;
  const closed = { ...SAMPLES.SessionClosed, event_id: randomUUID(), session_id } as AgateEvent;
  // Attempted during the outage: requestVerdict failed, the client was refused, nothing ran.
  const attempted = { ...SAMPLES.Command, event_id: randomUUID(), session_id, text: 'DELETE FROM t' } as Command;
  await session.emit(command);
  // The Kafka client's own retries keep no timer that holds the process open; a proxy's
  // listening socket does. This stands in for it.
  const alive = setInterval(() => undefined, 1_000);
  const seen: string[] = [];
  try {
    await broker.stop({ hard: true });
    let settled = 0;
    session.recordUnrecordable(attempted, 2_000);
    const pending = [session.emitLogged(response), session.emitLogged(closed)].map((p) => p.then(() => void settled++));
    // The client tries for a few seconds itself before a send fails.
    const refused = Date.now() + 60_000;
    while (!lines.some((l) => l.includes('retrying until it takes it')) && Date.now() < refused) await new Promise((r) => setTimeout(r, 100));
    assert.ok(lines.some((l) => l.includes('retrying until it takes it')), `no send failed within 60 s of the broker stopping:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 1_000));
    assert.is(settled, 0, 'nothing is given up while the broker is away');
    await broker.restart();
    await Promise.all(pending);
    assert.not.ok(lines.some((l) => l.includes('cannot record an event')), lines.join('\n'));

    const sub = await b.subscribe({ group: 'check', types: ['Command', 'Verdict', 'Response', 'SessionClosed'], handler: async (batch) => {
      for (const e of batch) {
        if (e.session_id !== session_id) continue;
        seen.push(e.type === 'Verdict' ? `Verdict:${e.command_id}:${e.decision}:${e.rule_id}` : `${e.type}:${e.event_id}`);
      }
    } });
    const deadline = Date.now() + 90_000;
    while (seen.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    await sub.close();
  } finally {
    clearInterval(alive);
  }
  assert.equal(seen, [
    `Command:${command.event_id}`, `Command:${attempted.event_id}`, `Verdict:${attempted.event_id}:deny:${UNRECORDABLE_RULE}`,
    `Response:${response.event_id}`, `SessionClosed:${closed.event_id}`,
  ]);
});

events.run();
