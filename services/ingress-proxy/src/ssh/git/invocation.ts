/**
 * How a client asks the target to run one of git's two ssh services. git sends
 * `git-receive-pack '/srv/repo.git'`, but `git push --receive-pack=…` (and `--upload-pack`,
 * `remote.<name>.receivepack`) lets it send any spelling: `git receive-pack 'repo'`, an absolute
 * path to the program, double quotes. Each is read back to one canonical command, so policy sees
 * the same text whatever the spelling and the program Agate runs is the one it decided on.
 */
type GitService = 'receive-pack' | 'upload-pack';

type GitInvocation =
  | { kind: 'git'; service: GitService; repo: string; canonical: string }
  /** The line names receive-pack but is not a plain invocation of it: its ref updates cannot be read. */
  | { kind: 'unclear'; reason: string };

/** The invocation on an exec line; undefined when the line does not run git's services at all. */
export function gitInvocation(text: string): GitInvocation | undefined {
  const words = shellWords(text);
  const named = /receive-pack|upload-pack/.test(text);
  if (words === undefined) return named && /receive-pack/.test(text) ? unclear('the command line is not a plain list of words') : undefined;
  const [first, second] = words;
  let service: GitService | undefined;
  let rest: string[] = [];
  const programOf = (w: string | undefined) => /^(?:\S*\/)?git-(receive-pack|upload-pack)$/.exec(w ?? '')?.[1] as GitService | undefined;
  if (programOf(first) !== undefined) {
    service = programOf(first);
    rest = words.slice(1);
  } else if (/^(?:\S*\/)?git$/.test(first ?? '') && (second === 'receive-pack' || second === 'upload-pack')) {
    service = second;
    rest = words.slice(2);
  }
  if (service === undefined) return named && /receive-pack/.test(text) ? unclear('receive-pack is not the program the line runs') : undefined;
  if (rest.length !== 1 || rest[0]!.startsWith('-') || rest[0] === '') {
    return service === 'receive-pack' ? unclear('git-receive-pack takes exactly one repository path and no options here') : undefined;
  }
  const repo = rest[0]!;
  return { kind: 'git', service, repo, canonical: `git-${service} ${quote(repo)}` };
}

function unclear(reason: string): GitInvocation {
  return { kind: 'unclear', reason };
}

/** Single-quoted as git itself quotes the path (`'` becomes `'\''`). */
export function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Splits a command line that is only words (quoted or not) as a POSIX shell would; undefined when
 * it holds anything a shell would act on (operators, expansions, redirections, comments).
 */
export function shellWords(text: string): string[] | undefined {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) return undefined;
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      for (; j < text.length && text[j] !== '"'; j += 1) {
        if ('$`'.includes(text[j]!)) return undefined;
        if (text[j] === '\\' && j + 1 < text.length && '"\\$`'.includes(text[j + 1]!)) j += 1;
        s += text[j];
      }
      if (j >= text.length) return undefined;
      word = (word ?? '') + s;
      i = j;
    } else if (c === '\\') {
      if (i + 1 >= text.length || text[i + 1] === '\n') return undefined;
      word = (word ?? '') + text[i + 1];
      i += 1;
    } else if (/[;&|<>()$`*?[\]{}!#~\n\r]/.test(c) && !(c === '~' && word !== undefined)) {
      // A leading `~` would be expanded by the shell: only plain paths are read as written.
      return undefined;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}
