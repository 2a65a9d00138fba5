import type { ShellCommand } from '../../../core/src/shell/analyze.js';

/** Rule id of a captured shell command that would disarm or bypass the capture hook. */
export const HOOK_TAMPER_RULE = 'agate.shell-hook-tamper';

/**
 * Names the capture hook lives on (services/ingress-proxy/src/ssh/capture/hook-script.ts): its
 * functions and variables, the shell variables it reads, the posix mode it runs in, and where
 * xtrace would write what it does.
 */
const HOOK_NAMES = /__agate|SRANDOM|POSIXLY_CORRECT|BASH_COMMAND|FUNCNAME|BASHPID|BASH_XTRACEFD/;
/** Signal specs the hook uses: its DEBUG trap and the signal whose trap text carries its reports. */
const HOOK_SIGNALS = /^(SIG)?(DEBUG|RTMAX|64)$/i;
/** A word whose value is only known at run time: it could name anything. */
const DYNAMIC = /[$`]/;

/**
 * bash's DEBUG trap also stops before the header of a compound command, and `$BASH_COMMAND` then
 * holds only the header (`for f in *.log`, `select x in a b`, `case $x in `): completed with an
 * empty body, so it is analysed as the words it expands (the body's commands are reported when
 * they run). Anything else is returned unchanged.
 */
export function completeCapturedHeader(text: string): string {
  if (/^(for|select)\s+[A-Za-z_][A-Za-z0-9_]*(\s+in\b[^\n]*)?\s*$/.test(text)) return `${text.trimEnd()}; do :; done`;
  if (/^case\s[^\n]*\sin\s*$/.test(text)) return `${text.trimEnd()} esac`;
  return text;
}

/**
 * Why a command reported by the bash capture hook must not run, or undefined. The hook decides
 * every simple command before it runs, so these are the commands that would stop it from doing
 * so: removing or replacing its DEBUG trap (`trap - DEBUG`), switching off function tracing or
 * `extdebug` (which lets a refused command be skipped), disabling builtins, replacing the shell
 * (`exec bash --norc` keeps the process the proxy watches but drops the hook), or touching the
 * hook's own names. Anything typed after such a command would run unseen, so it is refused
 * whatever the policy says.
 */
export function hookTamper(text: string, commands: ShellCommand[]): string | undefined {
  if (HOOK_NAMES.test(text)) return 'it names the capture hook\'s own functions or variables';
  for (const c of commands) {
    const words = c.argv.slice(1);
    // Options come before `--`; what follows are operands (`set -- "$@"` only sets arguments).
    const end = words.indexOf('--');
    const options = end < 0 ? words : words.slice(0, end);
    switch (c.program) {
      case 'trap': {
        // The handler (first operand) is analysed as a script; the signals must be literal and not ours.
        if (words.slice(1).some((w) => HOOK_SIGNALS.test(w) || DYNAMIC.test(w)) || (words.length === 1 && HOOK_SIGNALS.test(words[0]!))) {
          return 'it changes the DEBUG trap that reports each command';
        }
        // A handler runs whenever its signal (or ERR, RETURN) comes, even inside the hook while it
        // waits for a verdict, where it could read the hook's challenge: only EXIT may have one.
        const args = words[0] === '--' ? words.slice(1) : words;
        const setsHandler = args.length >= 2 && !/^-[lpP]*$/.test(args[0]!) && args[0] !== '';
        if (setsHandler && args.slice(1).some((w) => !/^(EXIT|0)$/i.test(w))) return 'a trap handler other than EXIT could run inside the capture hook';
        break;
      }
      case 'set':
        if (options.some((w, i) => /^\+[A-Za-z]*T/.test(w) || (w === '+o' && /functrace/.test(options[i + 1] ?? '')) || DYNAMIC.test(w))) {
          return 'it switches off function tracing, which the capture hook needs';
        }
        break;
      case 'shopt':
        if (options.some((w) => /^-[a-z]*u/.test(w)) && words.some((w) => /extdebug|functrace/.test(w) || DYNAMIC.test(w))) {
          return 'it switches off extdebug, which lets the capture hook skip a refused command';
        }
        break;
      case 'enable':
        return 'it enables or disables shell builtins, which the capture hook relies on';
      case 'exec':
        if (c.operands.length > 0) return 'it replaces the shell with another program, which the capture hook would not follow';
        break;
      case 'bind':
        if (words.some((w) => /^-[A-Za-z]*x/.test(w))) return 'a key bound to a shell command would run it without a report';
        break;
      case 'complete':
      case 'compgen':
        if (options.some((w) => /^-[A-Za-z]*C/.test(w))) return 'a completion command is run by the line editor, not as a command the hook reports';
        break;
    }
  }
  return undefined;
}
