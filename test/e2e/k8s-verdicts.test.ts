// One verdict per command, whoever decides it: a request the Kubernetes proxy decides itself
// (discovery, allowed by a built-in rule; impersonation, refused before policy) is recorded with
// the proxy's verdict alone, never a second one from the policy service. Under `default: deny`
// a second verdict would be a deny for a discovery request that ran. Real kube-apiserver, real
// kubectl, `agate start` with its embedded bus, policy and ledger.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import type { Command, Verdict } from '../../schemas/src/events.js';
import { agentKubectl, commandsWhere, events, responsesOf, sql, startKubeAgate, stopKubeAgate, type KubeAgate } from './kube-agate.js';
import { until } from '../harness/until.js';

const test = suite<KubeAgate>('e2e/kubernetes one verdict per command');

test.before(async (ctx) => {
  Object.assign(ctx, await startKubeAgate('policy:\n  default: deny\n'));
});
test.after((ctx) => stopKubeAgate(ctx));

interface DecisionRow { decision: string; decided_by: string; rule_id: string | null }

/** The command's verdicts in the bus log and in the ledger, and its row of agate.decisions, once its response is recorded. */
async function recordOf(ctx: KubeAgate, command: Command): Promise<{ verdicts: Verdict[]; ledgerVerdicts: number; decision: DecisionRow }> {
  await until('the response', () => (responsesOf(events(ctx), command).length > 0 ? true : undefined));
  const decision = await until('the decision in the ledger', async () => (await sql<DecisionRow>(ctx, `SELECT decision, decided_by, rule_id FROM agate.decisions WHERE command_id = '${command.event_id}'`))[0], { retryErrors: true });
  const [{ n }] = await sql<{ n: string | number }>(ctx, `SELECT count() AS n FROM agate.verdicts WHERE command_id = '${command.event_id}'`) as [{ n: string | number }];
  const verdicts = events(ctx).filter((e): e is Verdict => e.type === 'Verdict' && e.command_id === command.event_id);
  return { verdicts, ledgerVerdicts: Number(n), decision };
}

test('a discovery request under default deny runs, with one verdict: the built-in allow', async (ctx) => {
  const r = await agentKubectl(ctx, ['get', '--raw', '/api']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, '"kind":"APIVersions"');
  const [command] = commandsWhere(events(ctx), (c) => c.text === 'GET /api');
  assert.ok(command, 'the discovery request is recorded');
  const { verdicts, ledgerVerdicts, decision } = await recordOf(ctx, command!);
  assert.equal(verdicts.map((v) => [v.decision, v.rule_id]), [['allow', 'agate.k8s-discovery']]);
  assert.is(ledgerVerdicts, 1);
  assert.equal(decision, { decision: 'allow', decided_by: 'policy', rule_id: 'agate.k8s-discovery' });
});

test('an impersonating request is refused with one verdict: the proxy\'s deny, never an answer from policy', async (ctx) => {
  const r = await agentKubectl(ctx, ['get', 'configmaps', '-n', 'default', '--as', 'system:admin']);
  assert.is.not(r.code, 0);
  assert.match(r.stderr, 'impersonation headers (kubectl --as) are not allowed');
  const [command] = commandsWhere(events(ctx), (c) => c.attributes.impersonate === 'refused');
  assert.ok(command, 'the impersonating request is recorded');
  const { verdicts, ledgerVerdicts, decision } = await recordOf(ctx, command!);
  assert.equal(verdicts.map((v) => [v.decision, v.rule_id]), [['deny', 'agate.k8s-impersonation']]);
  assert.is(ledgerVerdicts, 1);
  assert.equal(decision, { decision: 'deny', decided_by: 'policy', rule_id: 'agate.k8s-impersonation' });
  assert.equal(responsesOf(events(ctx), command!).map((x) => [x.status, x.error_code]), [['refused', 'IMPERSONATION_REFUSED']]);
});

test.run();
