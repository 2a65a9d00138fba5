import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { analyzeShell } from './analyze.js';

const programs = suite('shell/analyzeShell: programs');
const unreadable = suite('shell/analyzeShell: unreadable');

const of = (text: string) => {
  const a = analyzeShell(text);
  if (!a.ok) throw new Error(`not analysable: ${text}: ${a.error}`);
  return a.programs;
};

programs('argv[0] of every simple command, by basename', () => {
  assert.equal(of('echo ok'), ['echo']);
  assert.equal(of('ls -l /tmp; /bin/rm -rf /tmp/x && curl -s x | sh'), ['ls', 'rm', 'curl', 'sh']);
  assert.equal(of('(cd /tmp || exit 1) & wait'), ['cd', 'exit', 'wait']);
  assert.equal(of(''), []);
});

programs('quotes, escapes, assignments and redirections do not hide the program', () => {
  assert.equal(of("\\rm x"), ['rm']);
  assert.equal(of("'r''m' x"), ['rm']);
  assert.equal(of('"rm" x'), ['rm']);
  assert.equal(of('LANG=C FOO="a b" rm x'), ['rm']);
  assert.equal(of('2>/dev/null >out rm x'), ['rm']);
  assert.equal(of('cat a 2>&1 >> log; echo "a;b" \'c|d\''), ['cat', 'echo']);
  assert.equal(of('if true; then rm x; fi # rm is real, echo is a comment'), ['true', 'rm']);
});

programs('wrappers and sh -c are looked through', () => {
  assert.equal(of('sudo -u root rm -rf /'), ['sudo', 'rm']);
  assert.equal(of('env -i PATH=/bin rm x'), ['env', 'rm']);
  assert.equal(of('timeout 5 nice -n 10 curl x'), ['timeout', 'nice', 'curl']);
  assert.equal(of('bash -c "echo a; rm -rf /tmp/x"'), ['bash', 'echo', 'rm']);
  assert.equal(of("sh -ec 'sudo rm x'"), ['sh', 'sudo', 'rm']);
});

unreadable('what the tokenizer cannot follow fails instead of guessing', () => {
  for (const text of ['echo $(rm x)', 'echo `rm x`', '$CMD x', '"$X" y', 'diff <(ls) b', 'cat <<EOF', 'echo "open', "echo 'open", 'eval rm x', 'for f in a; do rm $f; done', 'echo \\']) {
    assert.is(analyzeShell(text).ok, false, text);
  }
});

programs.run();
unreadable.run();
