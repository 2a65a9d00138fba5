import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { gitInvocation, shellWords } from './invocation.js';

const test = suite('ssh/git/invocation');

test('every spelling of receive-pack reads back to the canonical command', () => {
  for (const text of ["git-receive-pack '/srv/a.git'", "git receive-pack '/srv/a.git'", "/usr/lib/git-core/git-receive-pack '/srv/a.git'", 'git-receive-pack "/srv/a.git"', 'git-receive-pack /srv/a.git', "'git' 'receive-pack' '/srv/a.git'"]) {
    assert.equal(gitInvocation(text), { kind: 'git', service: 'receive-pack', repo: '/srv/a.git', canonical: "git-receive-pack '/srv/a.git'" }, text);
  }
  assert.equal(gitInvocation("git-upload-pack '~/it'\\''s'"), { kind: 'git', service: 'upload-pack', repo: "~/it's", canonical: "git-upload-pack '~/it'\\''s'" });
});

test('a line that runs receive-pack any other way is unclear; other lines are not git', () => {
  for (const text of ['cd /tmp && git-receive-pack repo', 'git-receive-pack --stateless-rpc repo', 'git-receive-pack a b', 'sh -c "git-receive-pack repo"', 'git-receive-pack $(echo repo)']) {
    assert.is(gitInvocation(text)?.kind, 'unclear', text);
  }
  assert.is(gitInvocation('ls -l'), undefined);
  assert.is(gitInvocation('echo upload-pack; ls'), undefined);
});

test('shellWords: quotes join, anything a shell would act on is refused', () => {
  assert.equal(shellWords(`a 'b c' "d\\"e" f\\ g`), ['a', 'b c', 'd"e', 'f g']);
  assert.is(shellWords("'unclosed'''s'"), undefined);
  for (const t of ['a;b', 'a|b', 'a $x', 'a `x`', '"$x"', 'a > f', "'open", '~/x']) assert.is(shellWords(t), undefined, t);
});

test.run();
