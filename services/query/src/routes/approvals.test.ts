import { suite } from '../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '../../../../core/src/bus/bus.js';
import { AgateError } from '../../../../core/src/errors.js';
import { EmbeddedStore } from '../../../../core/src/store/embedded.js';
import { nowMicros, type AgateEvent, type Identity } from '../../../../schemas/src/events.js';
import { SAMPLES } from '../../../../schemas/src/samples.js';
import { listApprovals } from '../approvals.js';
import type { Role } from '../roles.js';
import type { RouteContext } from '../router.js';
import { migrateQuery } from '../schema.js';
import { testLedger } from '../test-ledger.js';
import { approvalRoutes } from './approvals.js';

/*
 * Answering a hold over the API against the real embedded store: an accepted answer is published
 * as an ApprovalDecision; a refused call (no approver role, self-approval, missing claims) as an
 * ApprovalRefused with its reason, never as a decision. Recorded in the ledger, the refusals show
 * in agate.approval_refusals only, and the hold counts the accepted answer alone.
 */
const dir = mkdtempSync(join(tmpdir(), 'agate-approvals-'));
const store = EmbeddedStore.open(join(dir, 'store'));
const published: AgateEvent[] = [];
const bus = { publish: async (e: AgateEvent) => void published.push(e) } as unknown as Bus;
const request = { ...SAMPLES.ApprovalRequested, expires_at: nowMicros() + 600_000_000 };
const id = request.approval_id;

async function answer(decision: 'approve' | 'deny', identity: Identity, roles: Role[]): Promise<AgateError | undefined> {
  const route = approvalRoutes(store, bus).find((r) => r.method === 'POST' && r.path.endsWith(`/${decision}`))!;
  const ctx: RouteContext = {
    params: { id }, query: new URLSearchParams(), identity, roles: new Set(roles), format: 'json', contentType: undefined,
    body: async () => Buffer.alloc(0), signal: new AbortController().signal,
  };
  try {
    await route.handler(ctx);
    return undefined;
  } catch (err) {
    if (!(err instanceof AgateError)) throw err;
    return err;
  }
}

const refused = suite('approval answers: a refused call is an ApprovalRefused, never a decision');
refused.before(async () => {
  const ledger = await testLedger(store);
  await ledger.append([request]);
  await migrateQuery(store);
});

refused('each refused call publishes one ApprovalRefused with its reason; the accepted one an ApprovalDecision', async () => {
  const requester: Identity = { issuer: request.requester_issuer, subject: request.requester_subject, claims: { team: 'dba' } };
  const outsider = await answer('deny', { issuer: 'https://idp.example.com', subject: 'mallory', claims: { team: 'dba' } }, []);
  const self = await answer('approve', requester, ['approver']);
  const noClaim = await answer('approve', { issuer: 'https://idp.example.com', subject: 'carol', claims: { team: 'web' } }, ['approver']);
  assert.equal([outsider?.code, self?.code, noClaim?.code], ['API_FORBIDDEN', 'API_FORBIDDEN', 'API_FORBIDDEN']);
  assert.is(await answer('approve', { issuer: 'https://idp.example.com', subject: 'alice', claims: { team: 'dba' } }, ['approver']), undefined);

  assert.equal(published.map((e) => e.type), ['ApprovalRefused', 'ApprovalRefused', 'ApprovalRefused', 'ApprovalDecision']);
  const refusals = published.filter((e) => e.type === 'ApprovalRefused');
  assert.equal(refusals.map((e) => [e.approver_subject, e.decision]), [['mallory', 'deny'], [request.requester_subject, 'approve'], ['carol', 'approve']]);
  assert.match(refusals[0]!.refused_reason, /approver role/);
  assert.match(refusals[1]!.refused_reason, /self-approval/);
  assert.match(refusals[2]!.refused_reason, /lacks claim team/);
  const accepted = published.find((e) => e.type === 'ApprovalDecision');
  assert.equal(accepted?.type === 'ApprovalDecision' ? [accepted.approver_subject, accepted.refused_reason] : [], ['alice', null]);
});

refused('in the ledger: the views keep refusals apart and the hold counts the accepted answer only', async () => {
  const ledger = await testLedger(store);
  await ledger.append(published);
  const subjects = async (view: string) => (await store.query<{ s: string }>(`SELECT approver_subject AS s FROM agate.${view} WHERE approval_id = {id:String} ORDER BY seq`, { id })).map((r) => r.s);
  assert.equal(await subjects('approvals'), ['alice']);
  assert.equal(await subjects('approval_refusals'), ['mallory', request.requester_subject, 'carol']);
  const [state] = await listApprovals(store, { id, limit: 1, nowMicros: nowMicros() });
  assert.is(Number(state?.approvals), 1);
  // No ApprovalDecision in the ledger carries a refusal.
  const [row] = await store.query<{ n: string }>("SELECT toString(count()) AS n FROM agate.ledger WHERE event_type = 'ApprovalDecision' AND JSONExtract(body, 'refused_reason', 'Nullable(String)') IS NOT NULL");
  assert.is(row?.n, '0');
});

refused.after(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});
refused.run();
