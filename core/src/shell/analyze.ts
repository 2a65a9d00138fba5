/*
 * A careful tokenizer for POSIX shell command lines, enough to name the program each simple
 * command runs. It is not a shell parser (none is available to Agate): constructs it cannot
 * follow — command and process substitution, here-documents, `case`/`for`/functions, a program
 * named by a variable — make the analysis fail, and policy then refuses rather than guesses.
 */

export type ShellAnalysis = { ok: true; programs: string[] } | { ok: false; error: string };

/** A word as typed, and whether any part of it was a parameter expansion. */
interface Word {
  text: string;
  expands: boolean;
}

type Token = { kind: 'word'; word: Word } | { kind: 'separator' } | { kind: 'redirect' };

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'ash', 'busybox']);
/** Programs that run the rest of their arguments as a command; option words taking a value. */
const WRAPPERS: Record<string, Set<string>> = {
  sudo: new Set(['-u', '-g', '-C', '-D', '-h', '-p', '-r', '-t', '-U']),
  doas: new Set(['-u', '-C']),
  env: new Set(['-u', '-C', '-S']),
  nohup: new Set(),
  nice: new Set(['-n']),
  ionice: new Set(['-c', '-n', '-p']),
  command: new Set(),
  exec: new Set(['-a']),
  builtin: new Set(),
  time: new Set(['-f', '-o']),
  stdbuf: new Set(['-i', '-o', '-e']),
  xargs: new Set(['-I', '-n', '-P', '-L', '-d', '-E', '-s', '-a']),
  timeout: new Set(['-s', '-k']),
};
/** Reserved words that may precede a command. */
const PREFIX_WORDS = new Set(['!', '{', '}', 'if', 'then', 'else', 'elif', 'fi', 'while', 'until', 'do', 'done']);
const UNSUPPORTED_WORDS = new Set(['case', 'for', 'select', 'function', 'coproc', 'eval', 'source', '.']);
const MAX_DEPTH = 4;

class Unreadable extends Error {}

export function analyzeShell(text: string): ShellAnalysis {
  try {
    return { ok: true, programs: programsOf(text, 0) };
  } catch (err) {
    if (err instanceof Unreadable) return { ok: false, error: err.message };
    throw err;
  }
}

function programsOf(text: string, depth: number): string[] {
  if (depth > MAX_DEPTH) throw new Unreadable('shells nested too deeply');
  const programs: string[] = [];
  let words: Word[] = [];
  let skipNext = false;
  const flush = () => {
    programs.push(...commandPrograms(words, depth));
    words = [];
  };
  for (const token of tokenize(text)) {
    if (token.kind === 'separator') flush();
    else if (token.kind === 'redirect') skipNext = true; // the redirection's target is not an argument
    else if (skipNext) skipNext = false;
    else words.push(token.word);
  }
  flush();
  return programs;
}

/** The programs one simple command runs: its argv[0], and what wrappers and `sh -c` run. */
function commandPrograms(words: Word[], depth: number): string[] {
  let i = 0;
  const out: string[] = [];
  while (i < words.length && (PREFIX_WORDS.has(words[i]!.text) || isAssignment(words[i]!))) i += 1;
  while (i < words.length) {
    const argv0 = words[i]!;
    if (argv0.expands) throw new Unreadable('the program is named by a variable');
    if (UNSUPPORTED_WORDS.has(argv0.text)) throw new Unreadable(`"${argv0.text}" is not supported`);
    const name = argv0.text.slice(argv0.text.lastIndexOf('/') + 1);
    out.push(name);
    const withValue = WRAPPERS[name];
    if (SHELLS.has(name)) {
      const c = words.findIndex((w, j) => j > i && /^-[a-z]*c[a-z]*$/.test(w.text));
      if (c >= 0) {
        const script = words[c + 1];
        if (script === undefined) throw new Unreadable(`${name} -c without a command`);
        out.push(...programsOf(script.text, depth + 1));
      }
      return out;
    }
    if (withValue === undefined) return out;
    i += 1;
    // Skip the wrapper's options (and their values) and, for env, its assignments.
    while (i < words.length && (words[i]!.text.startsWith('-') || isAssignment(words[i]!))) {
      if (words[i]!.text === '--') {
        i += 1;
        break;
      }
      i += withValue.has(words[i]!.text) ? 2 : 1;
    }
    if (name === 'timeout') i += 1; // its first operand is the duration
  }
  return out;
}

function isAssignment(w: Word): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*=/.test(w.text);
}

function* tokenize(text: string): Generator<Token> {
  let i = 0;
  let word: Word | undefined;
  const startWord = () => (word ??= { text: '', expands: false });
  const endWord = function* (): Generator<Token> {
    if (word !== undefined) yield { kind: 'word', word };
    word = undefined;
  };
  while (i < text.length) {
    const ch = text[i]!;
    const next = text[i + 1];
    if (ch === '`' || (ch === '$' && next === '(') || ((ch === '<' || ch === '>') && next === '(')) {
      throw new Unreadable('command substitution cannot be analysed');
    }
    if (ch === ' ' || ch === '\t') {
      yield* endWord();
      i += 1;
    } else if (ch === '\n' || ch === ';' || ch === '|' || ch === '&' || ch === '(' || ch === ')') {
      if (ch === '&' && next === '>') {
        yield* endWord();
        yield { kind: 'redirect' };
        i += next === '>' && text[i + 2] === '>' ? 3 : 2;
        continue;
      }
      yield* endWord();
      yield { kind: 'separator' };
      i += 1;
    } else if (ch === '<' || ch === '>') {
      if (ch === '<' && next === '<') throw new Unreadable('here-documents cannot be analysed');
      // A file-descriptor number directly before the operator belongs to it (2>file).
      if (word !== undefined && /^\d+$/.test(word.text)) word = undefined;
      yield* endWord();
      i += 1;
      if (text[i] === '>' || text[i] === '|') i += 1;
      if (text[i] === '&') {
        i += 1;
        while (i < text.length && /[\d-]/.test(text[i]!)) i += 1; // 2>&1: no target word follows
        continue;
      }
      yield { kind: 'redirect' };
    } else if (ch === '#' && word === undefined) {
      while (i < text.length && text[i] !== '\n') i += 1;
    } else if (ch === '\\') {
      if (next === undefined) throw new Unreadable('a trailing backslash');
      if (next !== '\n') startWord().text += next;
      i += 2;
    } else if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new Unreadable('an unterminated single quote');
      startWord().text += text.slice(i + 1, end);
      i = end + 1;
    } else if (ch === '"') {
      i = readDoubleQuoted(text, i + 1, startWord());
    } else {
      const w = startWord();
      if (ch === '$') w.expands = true;
      w.text += ch;
      i += 1;
    }
  }
  yield* endWord();
}

/** Reads up to the closing quote; returns the index after it. */
function readDoubleQuoted(text: string, from: number, word: Word): number {
  let i = from;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"') return i + 1;
    if (ch === '`' || (ch === '$' && text[i + 1] === '(')) throw new Unreadable('command substitution cannot be analysed');
    if (ch === '\\' && i + 1 < text.length && '$`"\\\n'.includes(text[i + 1]!)) {
      if (text[i + 1] !== '\n') word.text += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === '$') word.expands = true;
    word.text += ch;
    i += 1;
  }
  throw new Unreadable('an unterminated double quote');
}
