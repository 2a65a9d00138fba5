import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { LEASE_ATTRIBUTE, LEASE_EXPIRED_REASON, type ProxyLeases } from '../../../core/src/bus/leases.js';
import { LocalBus } from '../../../core/src/bus/local-bus.js';
import { silentLogger } from '../../../core/src/log.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import { nowMicros, type AgateEvent } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { LeaseSweeper, leaseCloseId } from './lease-sweeper.js';
import { LedgerService } from './ledger.js';
import { generateSignerKey, parseSignerKey } from './note.js';
import { untilTrue } from '../../../test/harness/until.js';

/*
 * The ledger's side of proxy leases, over a real LocalBus, LedgerService and the embedded
 * ClickHouse engine. Which leases are vacant is Kafka's judgement (a group without members,
 * test/e2e/distributed.test.ts kills a real proxy); here a list stands in for it.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-leases-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const bus = new LocalBus({ dir: join(dir, 'bus'), fsync: false, logger: silentLogger });
const ledger = new LedgerService({ bus, store, codec: new EventCodec(), chainId: 'embedded', logger: silentLogger, signer: parseSignerKey(generateSignerKey('agate.test/ledger')) });

class VacantList implements ProxyLeases {
  vacant: string[] = [];
  vacantGroups: string[] = [];
  released: string[] = [];
  async vacantLeases(): Promise<string[]> {
    return [...this.vacant];
  }
  async vacantProcessGroups(): Promise<string[]> {
    return [...this.vacantGroups];
  }
  async releaseLease(lease: string): Promise<void> {
    this.released.push(lease);
  }
}

function session(lease: string, commands: number, closed: boolean): { id: string; events: AgateEvent[] } {
  const id = randomUUID();
  const time = nowMicros() - 5_000_000;
  const events: AgateEvent[] = [{ ...SAMPLES.SessionOpened, event_id: randomUUID(), session_id: id, time, attributes: { application_name: 'psql', [LEASE_ATTRIBUTE]: lease } }];
  for (let i = 1; i <= commands; i++) events.push({ ...SAMPLES.Command, event_id: randomUUID(), session_id: id, sequence: i, time: time + i });
  if (closed) events.push({ ...SAMPLES.SessionClosed, event_id: randomUUID(), session_id: id, time: time + 100 });
  return { id, events };
}

async function closes(sessionId: string): Promise<{ event_id: string; reason: string; commands: number }[]> {
  const rows = await store.query<{ event_id: string; body: string }>("SELECT event_id, body FROM agate.ledger WHERE session_id = {s:String} AND event_type = 'SessionClosed' ORDER BY seq", { s: sessionId });
  return rows.map((r) => {
    const b = JSON.parse(r.body) as { reason: string; commands: number };
    return { event_id: r.event_id, reason: b.reason, commands: Number(b.commands) };
  });
}

/** Each probe reads the store (chdb): a generous budget, polled often. */
const POLL = { timeoutMs: 10_000, everyMs: 25 };

const sweeper = suite('LeaseSweeper');
sweeper.before(() => ledger.start());
sweeper.after(async () => {
  await ledger.stop();
  await bus.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

sweeper('an expired lease\'s open sessions are closed with the reason, once whatever the number of ledgers; then the lease is released', async () => {
  const dead = session('verdicts.proxy-c.aa', 3, false);
  const ended = session('verdicts.proxy-c.aa', 1, true);
  const alive = session('verdicts.proxy-d.bb', 2, false);
  for (const s of [dead, ended, alive]) for (const e of s.events) await bus.publish(e);
  await untilTrue('the sessions stored', async () => Number((await store.query<{ n: string }>('SELECT count() AS n FROM agate.ledger'))[0]!.n) === 10, POLL);

  const leases = new VacantList();
  leases.vacant = ['verdicts.proxy-c.aa'];
  // Two ledger instances sweep the same leases.
  const sweepers = [1, 2].map(() => new LeaseSweeper({ leases, bus, store, logger: silentLogger, expiryMs: 1_000, everyMs: 60_000 }));
  const t0 = Date.now();
  for (const s of sweepers) await s.sweep(t0);
  for (const s of sweepers) await s.sweep(t0 + 999);
  assert.equal(await closes(dead.id), [], 'not expired before expiryMs of vacancy');
  for (const s of sweepers) await s.sweep(t0 + 1_000);
  await untilTrue('the close recorded', async () => (await closes(dead.id)).length > 0, POLL);
  await new Promise((r) => setTimeout(r, 300)); // room for a second record, were one coming
  assert.equal(await closes(dead.id), [{ event_id: leaseCloseId(dead.id), reason: LEASE_EXPIRED_REASON, commands: 3 }]);
  assert.is((await closes(ended.id)).length, 1, 'a session already closed is left alone');
  assert.equal(await closes(alive.id), [], 'a live proxy\'s session is left alone');
  assert.equal(leases.released, [], 'released only once the store shows no session open');
  await sweepers[0]!.sweep(t0 + 1_100);
  assert.equal(leases.released, ['verdicts.proxy-c.aa']);
});

sweeper('a lease seen held again starts its clock anew', async () => {
  const s = session('verdicts.proxy-e.cc', 1, false);
  for (const e of s.events) await bus.publish(e);
  await untilTrue('the session stored', async () => Number((await store.query<{ n: string }>('SELECT count() AS n FROM agate.ledger WHERE session_id = {s:String}', { s: s.id }))[0]!.n) === 2, POLL);
  const leases = new VacantList();
  const sw = new LeaseSweeper({ leases, bus, store, logger: silentLogger, expiryMs: 1_000, everyMs: 60_000 });
  leases.vacant = ['verdicts.proxy-e.cc'];
  await sw.sweep(10_000);
  leases.vacant = []; // its consumer came back (a restart between two consumers, a rebalance)
  await sw.sweep(10_500);
  leases.vacant = ['verdicts.proxy-e.cc'];
  await sw.sweep(11_000);
  await sw.sweep(11_900);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(await closes(s.id), []);
  await sw.sweep(12_000);
  await untilTrue('the close recorded', async () => (await closes(s.id)).length === 1, POLL);
});

sweeper('a per-process group (termination requests, session ends) vacant for the expiry is deleted; one that got a member again is kept', async () => {
  const leases = new VacantList();
  const sw = new LeaseSweeper({ leases, bus, store, logger: silentLogger, expiryMs: 1_000, everyMs: 60_000 });
  leases.vacantGroups = ['agate.terminations.proxy-f.dd', 'agate.session-ends.query-1.ee'];
  await sw.sweep(20_000);
  await sw.sweep(20_999);
  assert.equal(leases.released, [], 'not before expiryMs of vacancy');
  leases.vacantGroups = ['agate.terminations.proxy-f.dd']; // the query process's consumer is back
  await sw.sweep(21_000);
  assert.equal(leases.released, ['agate.terminations.proxy-f.dd']);
  leases.vacantGroups = ['agate.session-ends.query-1.ee'];
  await sw.sweep(21_500);
  await sw.sweep(22_400);
  assert.equal(leases.released, ['agate.terminations.proxy-f.dd'], 'its clock started again when it was seen vacant again');
  await sw.sweep(22_500);
  assert.equal(leases.released, ['agate.terminations.proxy-f.dd', 'agate.session-ends.query-1.ee']);
});

sweeper.run();
