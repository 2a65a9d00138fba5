import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { READY, Readiness } from './readiness.js';

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
