import { randomUUID } from 'node:crypto';
import type { Bus } from '../../../core/src/bus/bus.js';
import { silentLogger } from '../../../core/src/log.js';
import type { Store } from '../../../core/src/store/store.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import type { AgateEvent } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { LedgerService } from '../../ledger/src/ledger.js';
import { generateSignerKey, parseSignerKey } from '../../ledger/src/note.js';

/** One key for every test ledger of a process: a ledger started again on the same store must sign with its key. */
const KEY = generateSignerKey('agate.test/query');

/** Test helper: a ledger over a real store, fed directly (no bus), for query-side tests. */
export async function testLedger(store: Store): Promise<LedgerService> {
  const bus = { publish: async () => {}, subscribe: async () => ({ close: async () => {} }) } as unknown as Bus;
  const ledger = new LedgerService({ bus, store, codec: new EventCodec(), chainId: 'test', logger: silentLogger, signer: parseSignerKey(KEY) });
  await ledger.start();
  return ledger;
}

/** One session's events: opened, `commands` commands each with verdict (every third denied) and response, closed. */
export function sessionEvents(subject: string, commands: number, time = 1_764_000_000_000_000): AgateEvent[] {
  const session_id = randomUUID();
  const head = { session_id, time };
  const identity = { ...SAMPLES.SessionOpened.identity, subject };
  const out: AgateEvent[] = [{ ...SAMPLES.SessionOpened, ...head, event_id: randomUUID(), identity, client_address: `10.0.0.${commands}:5432` }];
  for (let i = 0; i < commands; i++) {
    const command_id = randomUUID();
    out.push({ ...SAMPLES.Command, ...head, event_id: command_id, identity, sequence: i + 1, text: `SELECT ${i} FROM items` });
    out.push({ ...SAMPLES.Verdict, ...head, event_id: randomUUID(), command_id, decision: i % 3 === 0 ? 'deny' : 'allow', rule_id: i % 3 === 0 ? 'no-drop' : null });
    out.push({ ...SAMPLES.Response, ...head, event_id: randomUUID(), command_id, rows: i });
  }
  out.push({ ...SAMPLES.SessionClosed, ...head, event_id: randomUUID() });
  return out;
}
