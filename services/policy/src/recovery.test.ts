import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBus } from '../../../core/src/bus/local-bus.js';
import { parseConfig } from '../../../core/src/config.js';
import { silentLogger } from '../../../core/src/log.js';
import { EmbeddedStore } from '../../../core/src/store/embedded.js';
import { EventCodec } from '../../../schemas/src/codec.js';
import { nowMicros, type ApprovalDecision, type ApprovalRequested, type Command, type Verdict } from '../../../schemas/src/events.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import { LedgerService } from '../../ledger/src/ledger.js';
import { generateSignerKey, parseSignerKey } from '../../ledger/src/note.js';
import { StoreApprovalHistory } from './approval-history.js';
import { CompiledPolicy, loadParsers } from './engine.js';
import { PolicyService } from './service.js';
import { until, type UntilOptions } from '../../../test/harness/until.js';

/*
 * Pending approvals survive a restart of the policy service: a real LocalBus, the ledger writing
 * into the real embedded ClickHouse engine, and a second PolicyService that takes the open
 * approvals up from the ledger — the answers given before the restart still count, an answer
 * after it releases the command, and an approval nobody answers still expires.
 */
const policy = new CompiledPolicy(parseConfig(`
identity: { dev_issuer: { enabled: true } }
policy:
  default: allow
  rules:
    - id: two-dbas
      action: hold
      match: { sql: { statements: [DropStmt] } }
      approval: { approvers: { claims: { team: dba } }, required: 2, timeout_s: 20 }
    - id: quick
      action: hold
      match: { sql: { statements: [TruncateStmt] } }
      approval: { timeout_s: 1.5 }
`, 'recovery.yaml').policy);

const dir = mkdtempSync(join(tmpdir(), 'agate-recovery-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const bus = new LocalBus({ dir: join(dir, 'bus'), fsync: false, logger: silentLogger });
const history = new StoreApprovalHistory(store);
const ledger = new LedgerService({
  bus, store, codec: new EventCodec(), chainId: 'recovery', logger: silentLogger, signer: parseSignerKey(generateSignerKey('agate.test/ledger')),
  checkpoints: { everyEvents: 1000, everyMs: 60_000, sinks: [] },
});
const seen: ApprovalRequested[] = [];
let service: PolicyService | undefined;

const recovery = suite('PolicyService: pending approvals across a restart');

recovery.before(async () => {
  await loadParsers();
  await ledger.start();
  await bus.subscribe({ group: 'watch', types: ['ApprovalRequested'], handler: async (b) => void seen.push(...(b as ApprovalRequested[])) });
});

recovery.after(async () => {
  await service?.stop();
  await ledger.stop();
  await bus.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function startPolicy(holdsDieWithProcess = false): Promise<void> {
  await service?.stop();
  service = new PolicyService({ bus, policy, logger: silentLogger, staleAfterMs: 5000, history, holdsDieWithProcess });
  await service.start();
}

/** The ledger records within moments; polled often so the suite stays quick. */
const POLL: UntilOptions = { timeoutMs: 20_000, everyMs: 50 };

const answer = (r: ApprovalRequested, subject: string): ApprovalDecision => ({
  type: 'ApprovalDecision', event_id: randomUUID(), time: nowMicros(), session_id: r.session_id, approval_id: r.approval_id, command_id: r.command_id,
  decision: 'approve', approver_issuer: 'https://idp.example.com', approver_subject: subject, approver_claims: { team: 'dba' }, comment: null, refused_reason: null,
});

/** Sends a command as a proxy would and waits until the ledger has recorded its hold. */
async function hold(text: string) {
  const c: Command = { ...SAMPLES.Command, event_id: randomUUID(), time: nowMicros(), text };
  const outcome = bus.requestVerdict(c, 2000, { onHold: () => undefined });
  const request = await until('the hold', () => seen.find((r) => r.command_id === c.event_id), POLL);
  return { outcome, request };
}

recovery('an approval given before and one after the restart release the command', async () => {
  await startPolicy();
  const { outcome, request } = await hold('DROP TABLE orders');
  await bus.publish(answer(request, 'alice')); // one of two, counted by the first instance
  await until('alice in the ledger', async () => ((await history.find(request.approval_id, nowMicros()))?.answers.length === 1 ? true : undefined), POLL);

  await startPolicy(); // the restart: the new instance holds nothing in memory
  await bus.publish(answer(request, 'bob'));
  const v = (await outcome) as { kind: 'verdict'; verdict: Verdict };
  assert.is(v.kind, 'verdict');
  assert.equal([v.verdict.decision, v.verdict.rule_id, v.verdict.approval_id], ['allow', 'two-dbas', request.approval_id]);
  assert.match(v.verdict.reason, /approved by alice, bob \(2 required\)/);
  // Settled in the ledger: no longer open.
  await until('the settled approval', async () => ((await history.find(request.approval_id, nowMicros())) === undefined ? true : undefined), POLL);
});

recovery('an approval nobody answers still expires after the restart, and is refused', async () => {
  await startPolicy();
  const { outcome, request } = await hold('TRUNCATE orders');
  await until('the request in the ledger', () => history.find(request.approval_id, nowMicros()), POLL);
  await startPolicy();
  const v = (await outcome) as { kind: 'verdict'; verdict: Verdict };
  assert.is(v.kind, 'verdict');
  assert.equal([v.verdict.decision, v.verdict.approval_id], ['deny', request.approval_id]);
  assert.match(v.verdict.reason, /no approval within 2 s/);
});

recovery('embedded (the proxies restarted too): a hold from before the restart is refused, not left to approve', async () => {
  await startPolicy();
  const { outcome, request } = await hold('DROP TABLE customers');
  await until('the request in the ledger', () => history.find(request.approval_id, nowMicros()), POLL);
  await startPolicy(true);
  const v = (await outcome) as { kind: 'verdict'; verdict: Verdict };
  assert.equal([v.verdict.decision, v.verdict.approval_id], ['deny', request.approval_id]);
  assert.match(v.verdict.reason, /Agate restarted while the command was held/);
  await until('the refusal in the ledger', async () => ((await history.find(request.approval_id, nowMicros())) === undefined ? true : undefined), POLL);
});

recovery.run();
