import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../../core/src/config.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import type { Command } from '../../../schemas/src/events.js';
import { CompiledPolicy, INEXACT_LINE_RULE, loadParsers } from './engine.js';

const policy = (rules: string) => new CompiledPolicy(parseConfig(`identity: { dev_issuer: { enabled: true } }\npolicy:\n  default: allow\n  rules:\n${rules}`, 'lines.yaml').policy);
const NO_RM = `    - { id: no-rm, action: deny, match: { shell: { commands: [rm] } } }\n`;
const OPT_IN = `    - { id: typed, action: allow, match: { ssh: { requests: [shell-line] } } }\n`;
const line = (text: string, edited: boolean, exact = 'false'): Command => ({
  ...SAMPLES.Command, protocol: 'ssh', text, attributes: { request: 'shell-line', exact, edited: String(edited) },
});

const test = suite('policy: lines typed in a shell');
test.before(() => loadParsers());

test('with shell rules, a rebuilt line is refused unless a rule names shell-line; an edited one always', () => {
  assert.is(policy(NO_RM).evaluate(line('ls', false)).rule_id, INEXACT_LINE_RULE);
  assert.is(policy(NO_RM + OPT_IN).evaluate(line('ls', false)).rule_id, 'typed');
  assert.is(policy(NO_RM + OPT_IN).evaluate(line('ls', true)).rule_id, INEXACT_LINE_RULE);
  // A refusal by a rule stays that rule's.
  assert.is(policy(NO_RM + OPT_IN).evaluate(line('rm -rf /tmp/x', false)).rule_id, 'no-rm');
});

test('without shell rules nothing changes; an exact line (never sent today) is decided as it is', () => {
  assert.is(policy(OPT_IN).evaluate(line('rm -rf /', true)).decision, 'allow');
  assert.is(policy(NO_RM).evaluate(line('ls', false, 'true')).decision, 'allow');
});

test.run();
