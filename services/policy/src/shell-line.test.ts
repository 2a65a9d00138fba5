import { suite } from '../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../../core/src/config.js';
import { SAMPLES } from '../../../schemas/src/samples.js';
import type { Command } from '../../../schemas/src/events.js';
import { CompiledPolicy, INEXACT_LINE_RULE, loadParsers, SCREEN_LINE_RULE } from './engine.js';
import { HOOK_TAMPER_RULE } from './shell-hook.js';

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

const screen = (text: string): Command => ({
  ...SAMPLES.Command, protocol: 'ssh', text, attributes: { request: 'screen-line', exact: 'false', best_effort: 'true', edited: 'true' },
});
const SCREEN_OPT_IN = `    - { id: full-screen, action: allow, match: { ssh: { requests: [screen-line] } } }\n`;

test('an Enter typed into a full-screen program: with shell rules refused unless a rule names screen-line (shell-line is not enough); without them decided as any request', () => {
  assert.is(policy(NO_RM).evaluate(screen(':!rm -f V')).rule_id, SCREEN_LINE_RULE);
  assert.is(policy(NO_RM).evaluate(screen('ihello^[:wq')).decision, 'deny');
  assert.is(policy(NO_RM + OPT_IN).evaluate(screen(':wq')).rule_id, SCREEN_LINE_RULE);
  assert.is(policy(NO_RM + SCREEN_OPT_IN).evaluate(screen(':wq')).rule_id, 'full-screen');
  assert.is(policy(NO_RM + SCREEN_OPT_IN).evaluate(screen(':wq')).decision, 'allow');
  // Its keys are not a command line: shell rules do not read them (the refusal above is the guard).
  assert.is(policy(NO_RM + SCREEN_OPT_IN).evaluate(screen('!rm -f V')).rule_id, 'full-screen');
  assert.is(policy(OPT_IN).evaluate(screen(':wq')).decision, 'allow');
});

const captured = (text: string): Command => ({
  ...SAMPLES.Command, protocol: 'ssh', text, attributes: { request: 'shell-line', exact: 'true', captured: 'bash', edited: 'false' },
});

test('a captured command is decided on its text; one that would switch the capture hook off is refused whatever the rules', () => {
  const p = policy(NO_RM);
  assert.is(p.evaluate(captured('ls -l')).decision, 'allow');
  assert.is(p.evaluate(captured('rm -rf /tmp/x')).rule_id, 'no-rm');
  for (const text of [
    'trap - DEBUG', "trap '' DEBUG", 'builtin trap - DEBUG', 'trap - RTMAX', "trap '' $sig", 'set +T', 'set +o functrace', 'set -e +T',
    'shopt -u extdebug', 'shopt -uo functrace', 'enable -n trap', "exec bash -c 'echo hi'", 'exec env -i vim', 'command exec top',
    'unset -f __agate_hook', 'unset SRANDOM', 'unset BASH_COMMAND', 'FUNCNAME=(x __agate_rearm)', 'BASH_XTRACEFD=5', 'readonly POSIXLY_CORRECT', `bind -x '"\\C-x": rm -rf /tmp/x'`, "complete -C 'touch /tmp/x' foo", 'echo ok; trap - DEBUG', "trap 'set > /tmp/leak' USR1", "trap -- 'echo e' ERR", "trap 'echo r' RETURN EXIT",
  ]) {
    const d = p.evaluate(captured(text));
    assert.is(d.rule_id, HOOK_TAMPER_RULE, text);
    assert.is(d.decision, 'deny', text);
  }
  // A nested shell reads its commands from the terminal: refused as unreadable before the hook matters.
  for (const text of ['bash --norc', 'env -i bash', 'exec bash --norc']) assert.is(p.evaluate(captured(text)).rule_id, 'agate.unparseable', text);
  // Ordinary uses of the same builtins run.
  for (const text of ["trap 'echo bye' EXIT", "trap -- 'echo bye' 0", "trap '' INT", 'trap - USR1', 'trap INT', 'trap -p', 'set -e', 'set -- "$@" x', 'shopt -s globstar', 'exec 3>/tmp/log', 'exec >&2']) {
    assert.is(p.evaluate(captured(text)).decision, 'allow', text);
  }
  // bash stops before a compound command's header too: the header alone is decided on the words it expands.
  for (const text of ['for i in a b', 'for i in $(seq 1 3)', 'select s in a b', 'case $x in ', '((i=0))', '[[ -n $x ]]', 'for i']) {
    assert.is(p.evaluate(captured(text)).decision, 'allow', text);
  }
  assert.is(p.evaluate(captured('for f in $(rm -rf /tmp/x)')).rule_id, 'no-rm');
  // A trap's handler is decided as the commands it runs.
  assert.is(p.evaluate(captured("trap 'rm -rf /tmp/x' EXIT")).rule_id, 'no-rm');
  // Without the captured mark (a typed line), the tamper check does not apply: the line is inexact anyway.
  assert.is(policy(OPT_IN).evaluate(line('trap - DEBUG', false)).decision, 'allow');
});

test.run();
