import type { Node } from 'web-tree-sitter';
import { evaluatedValue } from './evaluated.js';
import { parseArgs } from './flags.js';
import { parseBash, shellParserLoaded } from './parser.js';
import { wordValue } from './words.js';

export { initShellParser } from './parser.js';

/*
 * Every simple command a shell line runs, read from bash's grammar (tree-sitter-bash): commands
 * in pipelines, lists, subshells, functions, loops, command and process substitutions, the
 * scripts of `sh -c`/`bash -c`/`eval`/`alias`/`trap` (parsed again, recursively), and the commands that
 * wrappers such as `sudo`, `env`, `xargs` or `timeout` run. What the line would only decide at
 * run time — a program named by an expansion, a script that depends on one, a shell reading its
 * program from a pipe or a here-document — makes the analysis fail, and policy refuses rather
 * than guesses.
 */

/** One simple command, after quote removal. */
export interface ShellCommand {
  /** The basename of argv[0]: `/bin/rm`, `\rm` and `r''m` are all `rm`. */
  program: string;
  /** The words as the shell passes them; a word that depends on the run is kept as typed (`$f`). */
  argv: string[];
  /** Canonical flags (`-rf`, `-r -f` and `--recursive --force` all give `-r`, `-f`); see flags.ts. */
  flags: string[];
  /** The arguments that are not flags, in order. */
  operands: string[];
  /** `NAME=value` prefixes, as typed. */
  assignments: string[];
  /** Redirections, as typed (`2>/dev/null`, `<<EOF`). */
  redirects: string[];
  /** The wrappers and interpreters this command runs inside, outermost first (`sudo`, `bash -c`). */
  via: string[];
  /** An interpreter running downloaded code: `curl … | sh`, `wget -O- … | sudo bash`, `bash <(curl …)`. */
  downloaded: boolean;
  /**
   * Set on every command of a line in which bash evaluates a value as arithmetic or a variable
   * name (evaluated.ts): only a rule that names the fact (`evaluates_names: true`) allows it.
   */
  evaluatesNames?: true;
}

/**
 * `evaluates`: why the line holds a value bash evaluates as code (evaluated.ts); its commands
 * then carry `evaluatesNames`, and policy refuses the line unless a rule names the fact.
 */
type ShellAnalysis = { ok: true; commands: ShellCommand[]; programs: string[]; evaluates?: string } | { ok: false; error: string };

/** Where a command's standard input comes from, as far as the line says. */
type Stdin = 'inherited' | 'pipe' | 'download' | 'heredoc' | 'file';

interface Context {
  /** Nesting of scripts parsed from strings (`sh -c`, `eval`). */
  depth: number;
  via: string[];
  stdin: Stdin;
  out: ShellCommand[];
  /** The line's facts, shared by the scripts nested in it. */
  facts: { evaluates?: string };
}

class Unreadable extends Error {}

const MAX_SCRIPT_DEPTH = 6;
const MAX_NODE_DEPTH = 256;
const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'fish', 'rbash']);
/** Other interpreters that run a program read from standard input when given no script. */
const INTERPRETERS: Record<string, Set<string>> = {
  python: new Set(['-c', '-m']), python2: new Set(['-c', '-m']), python3: new Set(['-c', '-m']), perl: new Set(['-e', '-E']),
  ruby: new Set(['-e']), node: new Set(['-e', '-p']), php: new Set(['-r']), lua: new Set(['-e']), tclsh: new Set(), osascript: new Set(['-e']),
};
/** Programs whose output is something fetched from the network. */
const DOWNLOADERS = new Set(['curl', 'wget', 'fetch', 'aria2c', 'http', 'https', 'xh', 'lwp-request', 'GET', 'nc', 'ncat', 'socat', 'tftp']);
/** Programs that run their operands as a command; the option words that take a value. */
const WRAPPERS: Record<string, Set<string>> = {
  sudo: new Set(['-u', '-g', '-C', '-D', '-h', '-p', '-r', '-t', '-U', '-T', '-R']),
  doas: new Set(['-u', '-C']),
  env: new Set(['-u', '-C', '-S', '--unset', '--chdir', '--split-string']),
  nohup: new Set(),
  nice: new Set(['-n', '--adjustment']),
  ionice: new Set(['-c', '-n', '-p', '--class', '--classdata']),
  command: new Set(),
  exec: new Set(['-a']),
  builtin: new Set(),
  time: new Set(['-f', '-o', '--format', '--output']),
  stdbuf: new Set(['-i', '-o', '-e']),
  xargs: new Set(['-I', '-i', '-n', '-P', '-L', '-l', '-d', '-E', '-e', '-s', '-a', '--arg-file', '--delimiter', '--max-args', '--max-procs', '--replace']),
  timeout: new Set(['-s', '-k', '--signal', '--kill-after']),
  setsid: new Set(),
  chroot: new Set(['--userspec', '--groups']),
  unbuffer: new Set(),
  strace: new Set(['-e', '-o', '-p', '-s', '-u']),
  ltrace: new Set(['-e', '-o', '-p', '-s', '-u']),
  caffeinate: new Set(['-t', '-w']),
  flock: new Set(['-w', '--timeout', '-E', '--conflict-exit-code']),
  // Multi-call binaries: `busybox rm -rf /x` is rm (`busybox sh -c …` a shell).
  busybox: new Set(),
  toybox: new Set(),
  // Process-attribute wrappers: they exec their operands as a command.
  setpriv: new Set(['--reuid', '--regid', '--groups', '--inh-caps', '--ambient-caps', '--bounding-set', '--securebits', '--pdeathsig', '--selinux-label', '--apparmor-profile', '--landlock-access', '--landlock-rule']),
  unshare: new Set(['-S', '-G', '-R', '-w', '--setuid', '--setgid', '--root', '--wd', '--map-user', '--map-group', '--map-users', '--map-groups', '--propagation', '--setgroups']),
  nsenter: new Set(['-t', '-S', '-G', '-r', '-w', '--target', '--setuid', '--setgid', '--root', '--wd']),
  prlimit: new Set(['-p', '--pid']),
  taskset: new Set(),
  chrt: new Set(),
  numactl: new Set(['-C', '-N', '-m', '-i', '-p', '--physcpubind', '--cpunodebind', '--membind', '--interleave', '--preferred']),
  cgexec: new Set(['-g']),
  'systemd-run': new Set(['-p', '-E', '-u', '--property', '--setenv', '--unit', '--uid', '--gid', '--slice', '--description', '--working-directory']),
  // `runuser -u USER CMD…` (its `-c` form is su's, see runUser).
  runuser: new Set(['-u', '-g', '-G', '--user', '--group', '--supp-group', '-w', '--whitelist-environment']),
};
/** Wrappers whose first operand is not the command (a duration, a directory, a lock file, a CPU mask, a priority). */
const FIRST_OPERAND_SKIPPED = new Set(['timeout', 'chroot', 'flock', 'taskset', 'chrt']);
/**
 * Files that are the session's own input (or terminal): a shell or interpreter given one as its
 * script reads its program from what the client sends, which no one decides.
 */
const STDIN_FILES = /^\/(dev\/(stdin|fd\/0|tty|pts\/\d+)|proc\/(self|thread-self|\d+)\/fd\/0)$/;
/**
 * bash joins two words split by a backslash-newline with nothing around it (`r\⏎m` is `rm`); the
 * grammar reads two words. Such a line is refused rather than misread.
 */
const JOINED_WORD = /(?<![\s\\])\\\n(?=\S)/;

/**
 * Parses a shell command line and lists every simple command it runs.
 *
 * @example
 * analyzeShell(`x=1 \\rm -r -f /tmp/x && curl -s https://e.example | sudo bash`)
 * // { ok: true, programs: ['rm', 'curl', 'sudo', 'bash'], commands: [{ program: 'rm', flags: ['-r', '-f'], … }, …] }
 */
export function analyzeShell(text: string): ShellAnalysis {
  // Refusing beats throwing on the verdict path: a process that skipped init fails closed.
  if (!shellParserLoaded()) return { ok: false, error: 'the shell parser is not loaded' };
  const out: ShellCommand[] = [];
  const facts: Context['facts'] = {};
  try {
    analyzeScript(text, { depth: 0, via: [], stdin: 'inherited', out, facts });
  } catch (err) {
    if (err instanceof Unreadable) return { ok: false, error: err.message };
    // Anything else (the WASM runtime out of memory, a stack overflow) refuses the line too:
    // a decision must never throw, or one line would stall the policy service's stream.
    return { ok: false, error: `the shell parser failed: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (facts.evaluates === undefined) return { ok: true, commands: out, programs: out.map((c) => c.program) };
  for (const c of out) c.evaluatesNames = true;
  return { ok: true, commands: out, programs: out.map((c) => c.program), evaluates: facts.evaluates };
}

function analyzeScript(text: string, ctx: Context): void {
  if (ctx.depth > MAX_SCRIPT_DEPTH) throw new Unreadable('scripts nested too deeply');
  if (JOINED_WORD.test(text)) throw new Unreadable('a backslash-newline joins two words, which the shell reads as one');
  const tree = parseBash(text);
  try {
    if (tree.rootNode.hasError) throw new Unreadable(syntaxError(tree.rootNode));
    const skipped = skippedText(tree.rootNode, text);
    if (skipped !== undefined) throw new Unreadable(`the shell parser skips ${JSON.stringify(skipped)}, which bash reads as part of a word`);
    ctx.facts.evaluates ??= evaluatedValue(tree.rootNode);
    walk(tree.rootNode, ctx, 0);
  } finally {
    tree.delete();
  }
}

/** What may lie between the grammar's tokens: blanks, newlines and backslash-newline continuations. */
const BLANK = /^(?:[ \t\n]|\\\n)*$/;

/**
 * The first text no token of the tree covers that is not a blank, or undefined. The grammar takes
 * an escaped blank before a blank (`X=\  rm -f f`) for a blank, where bash reads a word (X is set to
 * a space and rm runs): the words after it shift, and `-f` would be decided as the program. A
 * here-document's literal lines are the only text between tokens that is not blank.
 */
function skippedText(root: Node, text: string): string | undefined {
  let at = 0;
  let found: string | undefined;
  const covered = (start: number, end: number) => {
    if (found === undefined && start > at && !BLANK.test(text.slice(at, start))) found = text.slice(at, start);
    at = Math.max(at, end);
  };
  const visit = (node: Node) => {
    if (found !== undefined) return;
    if (node.childCount === 0) return covered(node.startIndex, node.endIndex);
    for (const c of node.children) {
      if (c === null) continue;
      // A here-document's text up to each expansion in it (and after the last) is its content.
      if (node.type === 'heredoc_body') covered(at, c.startIndex);
      visit(c);
    }
    if (node.type === 'heredoc_body') covered(at, node.endIndex);
  };
  visit(root);
  covered(text.length, text.length);
  return found;
}

function syntaxError(root: Node): string {
  const bad = root.descendantsOfType(['ERROR'])[0] ?? root;
  const at = `line ${bad.startPosition.row + 1}, column ${bad.startPosition.column + 1}`;
  return root.text.trim() === '' ? 'syntax error' : `syntax error near ${at}`;
}

function walk(node: Node, ctx: Context, level: number): void {
  if (level > MAX_NODE_DEPTH) throw new Unreadable('the command line is nested too deeply');
  switch (node.type) {
    case 'command':
      return command(node, [], ctx, level);
    case 'redirected_statement':
      return redirected(node, ctx, level);
    case 'pipeline':
      return pipeline(node.namedChildren, ctx, level);
    case 'command_substitution':
      return children(node, { ...ctx, stdin: 'inherited' }, level);
    case 'declaration_command':
    case 'unset_command': {
      // export/local/declare/readonly/unset: recorded as commands; their values may hold substitutions.
      const words = node.text.split(/\s+/, 1);
      ctx.out.push(record(words[0]!, [words[0]!], [], [], ctx));
      return children(node, ctx, level);
    }
    case 'comment':
      return;
    default:
      return children(node, ctx, level);
  }
}

function children(node: Node, ctx: Context, level: number): void {
  for (const c of node.namedChildren) if (c !== null) walk(c, ctx, level + 1);
}

/** The stages of a pipeline read each other's output: a download upstream taints an interpreter. */
function pipeline(stages: (Node | null)[], ctx: Context, level: number, firstStdin: Stdin = ctx.stdin): void {
  let downloaded = false;
  let first = true;
  for (const stage of stages) {
    if (stage === null || stage.type === 'comment') continue;
    const before = ctx.out.length;
    walk(stage, { ...ctx, stdin: first ? firstStdin : downloaded ? 'download' : 'pipe' }, level + 1);
    if (ctx.out.slice(before).some((c) => DOWNLOADERS.has(c.program))) downloaded = true;
    first = false;
  }
}

function redirected(node: Node, ctx: Context, level: number): void {
  const body = node.childForFieldName('body');
  const redirects = node.childrenForFieldName('redirect').filter((r): r is Node => r !== null);
  let stdin = ctx.stdin;
  for (const r of redirects) stdin = stdinOf(r) ?? stdin;
  if (body?.type === 'command') command(body, redirects, { ...ctx, stdin }, level);
  else if (body !== null) walk(body, { ...ctx, stdin }, level + 1);
  for (const r of redirects) {
    if (r.type !== 'heredoc_redirect') {
      children(r, ctx, level);
      continue;
    }
    // `cat <<EOF | sh`: the grammar hangs the rest of the pipeline off the here-document.
    for (const c of r.namedChildren) {
      if (c === null) continue;
      if (c.type === 'pipeline') pipeline(c.namedChildren, ctx, level + 1, 'pipe');
      else if (c.type === 'command' || c.type === 'redirected_statement') walk(c, { ...ctx, stdin: 'pipe' }, level + 1);
      else walk(c, ctx, level + 1);
    }
  }
}

function stdinOf(redirect: Node): Stdin | undefined {
  if (redirect.type === 'heredoc_redirect' || redirect.type === 'herestring_redirect') return 'heredoc';
  if (redirect.type !== 'file_redirect') return undefined;
  const descriptor = redirect.childForFieldName('descriptor')?.text;
  const op = redirect.text.slice(descriptor?.length ?? 0).trimStart();
  if (!((descriptor === undefined || descriptor === '0') && op.startsWith('<') && !op.startsWith('<&'))) return undefined;
  // `sh < /dev/stdin` still reads what the client sends.
  const source = redirect.childForFieldName('destination');
  const file = source === null ? undefined : wordValue(source);
  return file !== undefined && STDIN_FILES.test(file) ? 'inherited' : 'file';
}

function command(node: Node, outer: Node[], ctx: Context, level: number): void {
  const assignments: string[] = [];
  const redirects = outer.map((r) => r.text);
  let stdin = ctx.stdin;
  for (const c of node.namedChildren) {
    if (c === null) continue;
    if (c.type === 'variable_assignment') assignments.push(c.text);
    if (c.type.endsWith('_redirect')) {
      redirects.push(c.text);
      stdin = stdinOf(c) ?? stdin;
    }
    // Substitutions in assignments, redirections and arguments run too.
    if (c.type !== 'command_name') walk(c, { ...ctx, stdin: 'inherited' }, level + 1);
  }
  const name = node.childForFieldName('name');
  if (name === null) return; // assignments or redirections alone
  const program = wordValue(name);
  if (program === undefined) throw new Unreadable(`the program is named by an expansion: ${name.text}`);
  const argv = [program];
  const literal = [true];
  let processDownload = false;
  for (const a of node.childrenForFieldName('argument')) {
    if (a === null) continue;
    const v = wordValue(a);
    argv.push(v ?? a.text);
    literal.push(v !== undefined);
    if (a.type === 'process_substitution' && a.descendantsOfType('command').some((c) => DOWNLOADERS.has(basename(wordValue(c.childForFieldName('name')!) ?? '')))) {
      processDownload = true;
    }
  }
  run(argv, literal, { assignments, redirects, processDownload }, { ...ctx, stdin });
}

interface Extras {
  assignments: string[];
  redirects: string[];
  /** An argument is `<(curl …)`: a script operand that is a download. */
  processDownload: boolean;
}

/** Records one simple command and follows what it runs in turn (wrappers, `sh -c`, `eval`). */
function run(argv: string[], literal: boolean[], extras: Extras, ctx: Context): void {
  for (;;) {
    if (literal[0] !== true) throw new Unreadable(`the program is named by an expansion: ${argv[0]}`);
    const program = basename(argv[0]!);
    const cmd = record(program, argv, extras.assignments, extras.redirects, ctx);
    ctx.out.push(cmd);
    const inner = { ...ctx, depth: ctx.depth + 1 };
    if (SHELLS.has(program)) return shell(cmd, literal, extras, ctx);
    const codeFlags = INTERPRETERS[program];
    if (codeFlags !== undefined) {
      if (!cmd.flags.some((f) => codeFlags.has(f)) && (cmd.operands.length === 0 || cmd.operands[0] === '-' || STDIN_FILES.test(cmd.operands[0]!) || extras.processDownload)) readsProgram(cmd, extras, ctx);
      return;
    }
    if (program === 'find') return findExec(argv, literal, extras, ctx);
    if (program === 'su') return su(cmd, literal, extras, ctx);
    if (program === 'watch') return watch(argv, literal, ctx);
    if (program === 'eval') return analyzeScript(script(argv.slice(1), literal.slice(1), 'eval'), { ...inner, via: [...ctx.via, 'eval'] });
    if (program === 'trap') return trapHandler(argv, literal, inner);
    if (program === 'source' || program === '.') {
      if (extras.processDownload) cmd.downloaded = true;
      else if (cmd.operands[0] !== undefined && STDIN_FILES.test(cmd.operands[0])) readsProgram(cmd, extras, { ...ctx, stdin: 'inherited' });
      return;
    }
    // `hash -p FILE NAME` makes NAME run FILE; `enable -f LIB NAME` loads a builtin: a name no longer says what runs.
    if ((program === 'hash' && cmd.flags.includes('-p')) || (program === 'enable' && cmd.flags.includes('-f'))) {
      throw new Unreadable(`${program} ${program === 'hash' ? '-p' : '-f'} changes what a command name runs`);
    }
    if (program === 'ssh') return sshRemote(cmd, literal, ctx);
    // bash's `coproc [NAME] COMMAND`: the grammar does not know it and misreads a compound body.
    if (program === 'coproc') throw new Unreadable('coproc runs a command the shell grammar Agate uses cannot read; run the command itself');
    if (program === 'sg' || program === 'script' || (program === 'runuser' && !argv.slice(1).some((w) => w === '-u' || w.startsWith('--user')))) return runsCommandString(cmd, literal, extras, ctx);
    if (program === 'alias') {
      // An alias defined here may run later in the same script: its text counts as run.
      for (let i = 1; i < argv.length; i++) {
        const eq = argv[i]!.indexOf('=');
        if (eq > 0) analyzeScript(script([argv[i]!.slice(eq + 1)], [literal[i]!], 'alias'), { ...inner, via: [...ctx.via, 'alias'] });
      }
      return;
    }
    const valued = WRAPPERS[program];
    if (valued === undefined) return;
    let i = 1;
    while (i < argv.length && (argv[i]!.startsWith('-') || (program === 'env' && /^[A-Za-z_][A-Za-z0-9_]*=/.test(argv[i]!)))) {
      const word = argv[i]!;
      if (word === '--') {
        i += 1;
        break;
      }
      if (program === 'env' && (word === '-S' || word === '--split-string' || word.startsWith('--split-string='))) {
        const value = word.includes('=') ? word.slice(word.indexOf('=') + 1) : argv[i + 1];
        if (value !== undefined) analyzeScript(script([value], [literal[word.includes('=') ? i : i + 1] ?? false], 'env -S'), { ...inner, via: [...ctx.via, 'env'] });
        return;
      }
      i += valued.has(word) ? 2 : 1;
    }
    if (FIRST_OPERAND_SKIPPED.has(program)) i += 1;
    if (i >= argv.length) {
      // `sudo -i`, `sudo -s`, `doas -s`: a root shell reading its commands from stdin.
      if ((program === 'sudo' || program === 'doas') && cmd.flags.some((f) => ['-s', '-i', '--shell', '--login'].includes(f))) return readsProgram(cmd, extras, ctx);
      if (program === 'xargs') run(['echo'], [true], { ...extras, processDownload: false }, { ...ctx, via: [...ctx.via, program] }); // xargs runs echo by default
      return;
    }
    argv = argv.slice(i);
    literal = literal.slice(i);
    ctx = { ...ctx, via: [...ctx.via, program] };
  }
}

/**
 * `trap HANDLER SIGNAL…` runs HANDLER when a signal (or EXIT, ERR) arrives: its text counts as
 * run, like eval's. `trap - SIG`, `trap '' SIG`, `trap SIG` (reset) and `trap -p`/`-l` run nothing.
 */
function trapHandler(argv: string[], literal: boolean[], ctx: Context): void {
  let i = 1;
  if (argv[i] === '--') i += 1;
  else if (argv[i] !== undefined && /^-[lpP]+$/.test(argv[i]!)) return;
  if (argv.length - i < 2 || argv[i] === '-' || argv[i] === '') return;
  analyzeScript(script([argv[i]!], [literal[i]!], 'trap'), { ...ctx, via: [...ctx.via, 'trap'] });
}

/** find's options before its starting points: `-H`, `-L`, `-P`, `-D debugopts`, `-Olevel`. */
const FIND_LEADING = /^-([HLP]|O\d*)$/;

/**
 * `find … -exec CMD … ;` (and -execdir, -ok, -okdir) runs CMD for each file found, with `{}` the
 * file: recorded with the starting points in its place (every file found lies under one), so
 * `find /etc -exec rm {} +` meets a rule on `rm /etc*`. `-delete` removes each file, depth first:
 * recorded as `rm -r -f` of the starting points, so rules on `rm` see it.
 */
function findExec(argv: string[], literal: boolean[], extras: Extras, ctx: Context): void {
  let i = 1;
  while (i < argv.length && (FIND_LEADING.test(argv[i]!) || argv[i] === '-D')) i += argv[i] === '-D' ? 2 : 1;
  const found: string[] = [];
  // Starting points run up to the first expression word: a test, an action, `(` or `!`.
  for (; i < argv.length && !/^[-(!)]/.test(argv[i]!) && argv[i] !== ','; i++) found.push(argv[i]!);
  const starts = found.length === 0 ? ['.'] : found;
  if (argv.includes('-delete')) {
    ctx.out.push(record('rm', ['rm', '-r', '-f', '--', ...starts], extras.assignments, extras.redirects, { ...ctx, via: [...ctx.via, 'find -delete'] }));
  }
  for (; i < argv.length; i++) {
    if (!['-exec', '-execdir', '-ok', '-okdir'].includes(argv[i]!)) continue;
    let end = i + 1;
    while (end < argv.length && argv[end] !== ';' && argv[end] !== '+') end += 1;
    if (end > i + 1) {
      if (argv[i + 1]!.includes('{}')) throw new Unreadable(`find ${argv[i]} runs the files it finds: the program depends on the run`);
      const words: string[] = [];
      const literals: boolean[] = [];
      for (let w = i + 1; w < end; w++) {
        const word = argv[w]!;
        const each = word.includes('{}') ? starts.map((s) => word.replaceAll('{}', s)) : [word];
        for (const x of each) (words.push(x), literals.push(literal[w]!));
      }
      run(words, literals, { ...extras, processDownload: false }, { ...ctx, via: [...ctx.via, 'find -exec'] });
    }
    i = end;
  }
}

/** `su [user] -c CMD` runs CMD with the user's shell; plain `su` reads commands from stdin. */
function su(cmd: ShellCommand, literal: boolean[], extras: Extras, ctx: Context): void {
  const { argv } = cmd;
  for (let i = 1; i < argv.length; i++) {
    const word = argv[i]!;
    const inline = word.startsWith('--command=') ? word.slice('--command='.length) : undefined;
    if (word === '-c' || word === '--command' || inline !== undefined) {
      const at = inline === undefined ? i + 1 : i;
      if (inline === undefined && at >= argv.length) throw new Unreadable('su -c without a command');
      return analyzeScript(script([inline ?? argv[at]!], [literal[at]!], 'su -c'), { ...ctx, depth: ctx.depth + 1, via: [...ctx.via, 'su -c'], stdin: 'inherited' });
    }
  }
  readsProgram(cmd, extras, ctx);
}

/** `watch CMD…` runs its operands, joined, through `sh -c` (unless -x: as argv). */
function watch(argv: string[], literal: boolean[], ctx: Context): void {
  let i = 1;
  let direct = false;
  while (i < argv.length && argv[i]!.startsWith('-')) {
    if (argv[i] === '-x' || argv[i] === '--exec') direct = true;
    i += ['-n', '--interval', '-q', '--equexit'].includes(argv[i]!) ? 2 : 1;
  }
  if (i >= argv.length) return;
  const via = { ...ctx, depth: ctx.depth + 1, via: [...ctx.via, 'watch'] };
  if (direct) return run(argv.slice(i), literal.slice(i), { assignments: [], redirects: [], processDownload: false }, via);
  analyzeScript(script(argv.slice(i), literal.slice(i), 'watch'), via);
}

/** `sh -c SCRIPT`, `sh SCRIPT_FILE`, or `sh` reading its program from standard input. */
function shell(cmd: ShellCommand, literal: boolean[], extras: Extras, ctx: Context): void {
  const { argv } = cmd;
  let i = 1;
  let dashC = false;
  let dashS = false; // -s: the program comes from standard input, operands are its arguments
  while (i < argv.length && /^[-+]/.test(argv[i]!)) {
    const word = argv[i]!;
    if (word === '--' || word === '-') {
      i += 1;
      break;
    }
    if (/^[-+][oO]$/.test(word) || word === '--rcfile' || word === '--init-file') i += 2;
    else {
      if (/^-[A-Za-z]*c/.test(word)) dashC = true;
      if (/^-[A-Za-z]*s/.test(word)) dashS = true;
      i += 1;
    }
  }
  if (dashC) {
    if (i >= argv.length) throw new Unreadable(`${cmd.program} -c without a command`);
    return analyzeScript(script([argv[i]!], [literal[i]!], `${cmd.program} -c`), { ...ctx, depth: ctx.depth + 1, via: [...ctx.via, `${cmd.program} -c`], stdin: 'inherited' });
  }
  if (dashS || i >= argv.length || argv[i] === '-' || extras.processDownload) readsProgram(cmd, extras, ctx);
  else if (STDIN_FILES.test(argv[i]!)) readsProgram(cmd, extras, { ...ctx, stdin: 'inherited' });
}

/** ssh's options that take a value (`ssh -p 22 host cmd`). */
const SSH_VALUED = new Set(['-B', '-b', '-c', '-D', '-E', '-e', '-F', '-I', '-i', '-J', '-L', '-l', '-m', '-O', '-o', '-p', '-Q', '-R', '-S', '-W', '-w']);

/**
 * `ssh [options] HOST CMD…` from the target runs CMD through a shell on HOST, which may be the
 * target itself (`ssh localhost rm -rf /x`): CMD's words, joined, are read as a script.
 */
function sshRemote(cmd: ShellCommand, literal: boolean[], ctx: Context): void {
  const { argv } = cmd;
  let i = 1;
  while (i < argv.length && argv[i]!.startsWith('-') && argv[i] !== '--') i += SSH_VALUED.has(argv[i]!) ? 2 : 1;
  if (argv[i] === '--') i += 1;
  if (i + 1 >= argv.length) return; // a login without a command: its input is another host's shell
  analyzeScript(script(argv.slice(i + 1), literal.slice(i + 1), 'ssh'), { ...ctx, depth: ctx.depth + 1, via: [...ctx.via, 'ssh'], stdin: 'inherited' });
}

/**
 * Programs that run a command string through a shell: `sg GROUP -c CMD` or `sg GROUP CMD…`,
 * `script -c CMD [FILE]`, `runuser [-l] USER -c CMD` (like su; plain `runuser USER` reads
 * stdin). Without a command, `sg` and `runuser` start a shell reading stdin; `script` one on
 * its own terminal.
 */
function runsCommandString(cmd: ShellCommand, literal: boolean[], extras: Extras, ctx: Context): void {
  const { argv, program } = cmd;
  const nested = (at: number, words: number) =>
    analyzeScript(script(argv.slice(at, at + words), literal.slice(at, at + words), `${program} -c`), { ...ctx, depth: ctx.depth + 1, via: [...ctx.via, `${program} -c`], stdin: 'inherited' });
  for (let i = 1; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '-c' || word === '--command' || (program === 'script' && /^-[A-Za-z]*c$/.test(word))) {
      if (i + 1 >= argv.length) throw new Unreadable(`${program} -c without a command`);
      return nested(i + 1, 1);
    }
    const inline = /^--command=/.test(word) ? word.slice('--command='.length) : /^-[A-Za-z]*c./.test(word) && program === 'script' ? word.slice(word.indexOf('c') + 1) : undefined;
    if (inline !== undefined) return analyzeScript(script([inline], [literal[i]!], `${program} -c`), { ...ctx, depth: ctx.depth + 1, via: [...ctx.via, `${program} -c`], stdin: 'inherited' });
  }
  if (program === 'script') throw new Unreadable('script without -c starts a shell on its own terminal, which Agate does not read');
  // `sg GROUP CMD…`: the words after the group are the command string.
  if (program === 'sg' && cmd.operands.length > 1) return nested(argv.indexOf(cmd.operands[0]!) + 1, argv.length - argv.indexOf(cmd.operands[0]!) - 1);
  readsProgram(cmd, extras, ctx);
}

/** An interpreter whose program arrives on standard input (or from a process substitution). */
function readsProgram(cmd: ShellCommand, extras: Extras, ctx: Context): void {
  if (ctx.stdin === 'download' || extras.processDownload) {
    cmd.downloaded = true;
    return;
  }
  if (ctx.stdin === 'file') return; // `sh < script.sh` is `sh script.sh`
  throw new Unreadable(`${cmd.program} reads its program from ${ctx.stdin === 'pipe' ? 'a pipe' : ctx.stdin === 'heredoc' ? 'a here-document' : 'standard input'}, which cannot be analysed`);
}

/** The text a nested script is made of; it must not depend on the run. */
function script(words: string[], literal: boolean[], what: string): string {
  if (literal.some((l) => !l)) throw new Unreadable(`the script of ${what} depends on an expansion`);
  return words.join(' ');
}

function record(program: string, argv: string[], assignments: string[], redirects: string[], ctx: Context): ShellCommand {
  const { flags, operands } = parseArgs(program, argv.slice(1));
  return { program, argv, flags, operands, assignments, redirects, via: ctx.via, downloaded: false };
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/**
 * A bounded cache in front of {@link analyzeShell}: agents repeat the same command lines, and the
 * analysis is a pure function of the text. Least recently used entries go past `capacity`.
 */
export class ShellAnalysisCache {
  readonly #entries = new Map<string, ShellAnalysis>();

  readonly #capacity: number;
  readonly #maxTextLength: number;

  constructor(capacity = 4096, maxTextLength = 8192) {
    this.#capacity = capacity;
    this.#maxTextLength = maxTextLength;
  }

  analyze(text: string): ShellAnalysis {
    const hit = this.#entries.get(text);
    if (hit !== undefined) {
      this.#entries.delete(text);
      this.#entries.set(text, hit);
      return hit;
    }
    const analysis = analyzeShell(text);
    if (text.length <= this.#maxTextLength) {
      this.#entries.set(text, analysis);
      if (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value!);
    }
    return analysis;
  }
}
