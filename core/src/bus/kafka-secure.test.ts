import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKafka, type KafkaBroker } from '../../../test/harness/kafka.js';
import { makeTestCa, type TestCa } from '../../../test/harness/test-ca.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent, Command } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { silentLogger } from '../log.js';
import { KafkaBus, type KafkaBusOptions } from './kafka-bus.js';
import { SingleObjectWire } from './single-object-wire.js';

/*
 * The Kafka bus against a real broker whose only client listener is SASL_SSL (SCRAM over TLS with
 * a certificate from a test CA), as production Kafka is run.
 */
const codec = new EventCodec();
const dir = mkdtempSync(join(tmpdir(), 'agate-kafka-sasl-'));
let broker: KafkaBroker;
let ca: TestCa;
const buses: KafkaBus[] = [];
const ready = (async () => {
  ca = await makeTestCa(dir);
  broker = await startKafka({ readyTimeoutMs: 180_000, secure: { cert: ca.server.cert, key: ca.server.key, scramUsers: { agate: 'scram-secret-1' } } });
})();
ready.catch(() => undefined);

function options(over: Partial<KafkaBusOptions>): KafkaBusOptions {
  return {
    brokers: [broker.secureBootstrap!], instanceId: 'sasl', groupPrefix: 'sasl', eventsTopic: 'secure-events', verdictsTopic: 'secure-verdicts', partitions: 1, replicationFactor: 1,
    wire: new SingleObjectWire(codec), logger: silentLogger, awaitsVerdicts: false, connectTimeoutMs: 5_000, ...over,
  };
}
const command = (text: string): Command => ({ ...SAMPLES.Command, event_id: randomUUID(), session_id: 'secure', text });

const secure = suite('KafkaBus over SASL_SSL');
secure.after(async () => {
  for (const b of buses) await b.close();
  await broker?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

secure('SCRAM-SHA-512 over TLS, with the broker verified against the CA: events go round', async () => {
  await ready;
  const b = await KafkaBus.connect(options({ tls: { ca: readFileSync(ca.ca), rejectUnauthorized: true }, sasl: { mechanism: 'scram-sha-512', username: 'agate', password: 'scram-secret-1' } }));
  buses.push(b);
  const e = command('SELECT 1');
  await b.publish(e);
  const got = await new Promise<AgateEvent>((resolve) => void b.subscribe({ group: 'secure-reader', types: ['Command'], handler: async (batch) => resolve(batch[0]!) }));
  assert.equal(got, e);
});

secure('SCRAM-SHA-256 works too', async () => {
  await ready;
  const b = await KafkaBus.connect(options({ eventsTopic: 'secure-events-256', verdictsTopic: 'secure-verdicts-256', tls: { ca: readFileSync(ca.ca) }, sasl: { mechanism: 'scram-sha-256', username: 'agate', password: 'scram-secret-1' } }));
  buses.push(b);
  await b.publish(command('SELECT 2'));
});

secure('a wrong password is refused, and says it was authentication', async () => {
  await ready;
  const err = await KafkaBus.connect(options({ tls: { ca: readFileSync(ca.ca) }, sasl: { mechanism: 'scram-sha-512', username: 'agate', password: 'wrong' } }))
    .then((b) => (buses.push(b), undefined), (e: unknown) => e as Error);
  assert.ok(err !== undefined, 'connect with a wrong password failed');
  assert.match(err!.message, /SASL|[Aa]uthentication/);
  assert.not.match(err!.message, /wrong/, 'the password is not echoed');
});

secure('a broker certificate the configured CA did not sign is refused', async () => {
  await ready;
  const other = await makeTestCa(mkdtempSync(join(dir, 'other-')));
  const err = await KafkaBus.connect(options({ tls: { ca: readFileSync(other.ca) }, sasl: { mechanism: 'scram-sha-512', username: 'agate', password: 'scram-secret-1' } }))
    .then((b) => (buses.push(b), undefined), (e: unknown) => e as Error);
  assert.ok(err !== undefined, 'connect to a broker with an untrusted certificate failed');
  assert.match(err!.message, /certificate/i);
});

secure.run();
