import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { problemProbe, problemsOf, READY, Readiness } from './readiness.js';

const report = suite('Readiness.report');

report('nothing registered is not ready', async () => {
  assert.equal(await new Readiness().report(), { ready: false, components: {} });
});

report('ready only when every pushed state and probe is ready', async () => {
  const r = new Readiness();
  r.set('bus', READY);
  r.probe('store', async () => READY);
  assert.is((await r.report()).ready, true);
  r.set('ledger.append', { ready: false, reason: 'the store is behind the checkpoint' });
  const out = await r.report();
  assert.is(out.ready, false);
  assert.equal(out.components['ledger.append'], { ready: false, reason: 'the store is behind the checkpoint' });
  assert.equal(out.components.store, READY);
});

report('a probe that throws or hangs is not ready, with the reason', async () => {
  const r = new Readiness();
  r.probe('store', async () => { throw new Error('connection refused'); });
  r.probe('bus', () => new Promise(() => {}));
  const out = await r.report(50);
  assert.is(out.ready, false);
  assert.equal(out.components.store, { ready: false, reason: 'connection refused' });
  assert.equal(out.components.bus, { ready: false, reason: 'no answer within 50 ms' });
});

report('a removed component no longer counts', async () => {
  const r = new Readiness();
  r.set('process', READY);
  r.set('listener.postgres', { ready: false, reason: 'draining' });
  r.remove('listener.postgres');
  assert.equal(await r.report(), { ready: true, components: { process: READY } });
});

report.run();

const liveness = suite('Readiness.liveness');

liveness('only live probes count; with none the process is alive', async () => {
  const r = new Readiness();
  assert.equal(await r.liveness(), { ready: true, components: {} });
  let ledger: string | undefined = 'LEDGER_STORE_BEHIND: the store is behind';
  let consumers: string | undefined;
  r.probe('ledger', problemProbe(() => ledger));
  r.probe('bus.consumers', problemProbe(() => consumers), { live: true });
  // A ledger waiting for an operator: not ready, still alive.
  assert.is((await r.report()).ready, false);
  assert.equal(problemsOf(await r.report()), [{ component: 'ledger', problem: 'LEDGER_STORE_BEHIND: the store is behind' }]);
  assert.equal(await r.liveness(), { ready: true, components: { 'bus.consumers': READY } });
  // A consumer that stopped: neither ready nor alive.
  consumers = 'consumer group "ledger" stopped';
  ledger = undefined;
  assert.equal(await r.liveness(), { ready: false, components: { 'bus.consumers': { ready: false, reason: 'consumer group "ledger" stopped' } } });
  assert.equal(problemsOf(await r.report()), [{ component: 'bus.consumers', problem: 'consumer group "ledger" stopped' }]);
  // Withdrawn, it counts no more; registered again without `live`, it is not a liveness probe.
  r.remove('bus.consumers');
  assert.is((await r.liveness()).ready, true);
  r.probe('bus.consumers', problemProbe(() => consumers));
  assert.is((await r.liveness()).ready, true);
});

liveness.run();
