import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../../core/src/config.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import type { Command } from '../../../schemas/src/events.js';
import { CompiledPolicy, UNPARSEABLE_RULE, loadParsers } from './engine.js';

const config = parseConfig(
  `
identity: { dev_issuer: { enabled: true } }
policy:
  default: deny
  rules:
    - id: no-force
      action: deny
      match: { git: { forced: true, refs: ['refs/heads/*'] } }
    - id: hold-main-deletes
      action: hold
      match: { git: { repositories: ['/srv/app'], refs: [refs/heads/main], actions: [delete] } }
    - id: pushes
      action: allow
      match: { git: { repositories: ['/srv/*'] } }
`,
  'git.yaml',
);
const policy = new CompiledPolicy(config.policy);
const push = (repo: string, ...updates: [string, string, string][]): Command => ({
  ...SAMPLES.Command, protocol: 'ssh', text: 'git push',
  attributes: { request: 'git-push', git_repo: repo, git_updates: JSON.stringify(updates.map(([ref, action, forced]) => ({ ref, action, forced, old: '', new: '' }))) },
});

const test = suite('policy match.git');
test.before(() => loadParsers());

test('each update is decided; any deny refuses the push, a hold holds it', () => {
  assert.is(policy.evaluate(push('/srv/app.git', ['refs/heads/main', 'update', 'false'])).rule_id, 'pushes');
  assert.is(policy.evaluate(push('/srv/app.git', ['refs/heads/a', 'create', 'false'], ['refs/heads/main', 'update', 'true'])).rule_id, 'no-force');
  assert.is(policy.evaluate(push('/srv/app.git', ['refs/heads/main', 'delete', 'false'])).decision, 'hold');
  assert.is(policy.evaluate(push('/other/app.git', ['refs/heads/x', 'create', 'false'])).rule_id, null);
});

test('an update not proven fast-forward counts as forced; tags are outside refs/heads/*', () => {
  assert.is(policy.evaluate(push('/srv/app', ['refs/heads/dev', 'update', 'unknown'])).rule_id, 'no-force');
  assert.is(policy.evaluate(push('/srv/app', ['refs/tags/v1', 'update', 'true'])).rule_id, 'pushes');
});

test('a push whose updates cannot be read is refused; git rules never match other commands', () => {
  assert.is(policy.evaluate({ ...push('/srv/app'), attributes: { request: 'git-push', git_repo: '/srv/app', git_updates: '[{"ref":1}]' } }).rule_id, UNPARSEABLE_RULE);
  assert.is(policy.evaluate({ ...SAMPLES.Command, protocol: 'ssh', text: 'ls', attributes: { request: 'exec' } }).rule_id, null);
});

test.run();
