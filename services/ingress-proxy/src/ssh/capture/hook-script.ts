/*
 * The shell programs Agate runs on the target to capture what an interactive bash executes.
 *
 * Two channels on Agate's own SSH connection to the target:
 * - the helper (an exec channel without a pty, run by the account's login shell) makes a private
 *   directory, answers each report with a verdict written into a per-process FIFO there, and
 *   reads the kernel's view of the shell process (/proc/PID/stat, wchan, syscall) on request;
 * - the shell (an exec channel with the client's pty) is bash started with Agate's rc file and a
 *   scrubbed environment, so no startup file of the account and no exported function runs first.
 *
 * The rc file installs a DEBUG trap with `extdebug` (a non-zero trap status skips the command)
 * and `functrace` (functions, command substitutions and subshells inherit the trap). Before each
 * simple command the trap writes a report on the terminal — `trap -- '#AGATE1:CHALLENGE:PID:TEXT'
 * RTMAX` — which the proxy strips from the output, and waits for the verdict line `CHALLENGE 0|1`
 * in its FIFO. The challenge comes from the kernel's randomness ($SRANDOM) and only travels in
 * the report, which nothing on the target can read back (the proxy alone reads the pty's output):
 * a process that writes into the FIFO cannot forge an allow.
 *
 * The agent types into this same shell, so the hook is written to survive it: it switches to
 * posix mode (an assignment, not a command; the value `agate` marks the mode as the hook's own,
 * should a ^C interrupt the hook before it leaves it) so that `trap`, `unset` and `:` are the shell's
 * special builtins even if the agent defined functions by those names; everything else is syntax
 * (`[[ ]]`, `(( ))`, expansions, `$(< file)`); its functions and directory are readonly; it refuses
 * (returns non-zero) when any of its variables gained an attribute, posix mode cannot be entered,
 * $SRANDOM stopped being random, or functrace/extdebug were switched off. BASH_COMMAND,
 * FUNCNAME, BASHPID and SRANDOM are made readonly (they stay live), since unset they would turn
 * into plain variables the agent could fill; xtrace is off while the hook runs, so `set -x` cannot
 * print its challenge. The proxy refuses the
 * commands that would remove the trap (services/policy/src/shell-hook.ts); should one get through
 * anyway, the readonly PROMPT_COMMAND puts the trap back before the next prompt (the hook lets the
 * commands inside that function through unasked: all they do is re-arm).
 *
 * The call of PROMPT_COMMAND itself is reported like any command (`__agate_rearm`, REARM_TEXT)
 * and waits for its answer: the proxy allows it without a decision, and takes it as the shell
 * being back at its prompt with the line before read. Only a report the shell waits on is known
 * to come after the line went to it (ShellCapture.shellReads): a line that ran nothing (a comment,
 * a syntax error, a paste discarded by ^C) otherwise left the proxy waiting for a report forever.
 */

/** What opens every report on the terminal; the proxy looks for it in the shell's output. */
export const REPORT_OPEN = "trap -- '#AGATE1:";
/** What the report of the shell's PROMPT_COMMAND says: the shell is back at its prompt. */
export const REARM_TEXT = '__agate_rearm';
/** The exit status of the helper or shell when capture is not possible here (no bash 5.1+, no mktemp). */
const NO_CAPTURE_STATUS = 97;

/**
 * The helper: one line `D <dir>` first, then `S <pid> <stat>|<wchan>|<syscall>` per `s` request,
 * `T <n> <stty -g>` per `t` request (the modes of /dev/pts/N, which the agent may have changed),
 * and `K <pid>` once a `k` request has killed the process and everything it started. The tree is
 * stopped first (SIGSTOP, pass after pass over /proc until no new child shows), so that no process
 * in it can act, fork or be reparented while it goes, then killed (SIGKILL), the process itself
 * last. A shell that is merely hung up may still run the line in its editor (readline takes the
 * hangup as ^D).
 */
export function helperScript(): string {
  return [
    'umask 077',
    // k PID: t holds " pid pid … "; a process whose parent is in t joins it, stopped, until a pass adds none.
    'k() {',
    '  r=$1 t=" $1 "; kill -STOP "$1" 2>/dev/null; n=1',
    '  while [ "$n" = 1 ]; do',
    '    n=0',
    '    for s in /proc/[0-9]*/stat; do',
    '      q=${s#/proc/}; q=${q%/stat}',
    '      case $t in *" $q "*) continue ;; esac',
    '      l=; read -r l 2>/dev/null <"$s" || continue',
    // The command name, in parentheses, may hold anything: the fields start after the last ')'.
    "      l=${l##*')'}; set -f; set -- $l; set +f",
    '      case $t in *" $2 "*) kill -STOP "$q" 2>/dev/null; t="$t$q "; n=1 ;; esac',
    '    done',
    '  done',
    // The shell last: its death closes its channel, and by then every other process is killed.
    '  kill -KILL ${t# $r } 2>/dev/null; kill -KILL "$r" 2>/dev/null',
    '}',
    `d=$(mktemp -d "\${TMPDIR:-/tmp}/agate-hook.XXXXXXXXXX") || exit ${NO_CAPTURE_STATUS}`,
    'command -v mkfifo >/dev/null 2>&1 || exit ' + NO_CAPTURE_STATUS,
    'command -v stty >/dev/null 2>&1 || exit ' + NO_CAPTURE_STATUS,
    "trap 'exit 0' HUP INT TERM PIPE",
    'echo "D $d"',
    // f PID: make the FIFO a process waits on; v PID CHALLENGE 0|1: answer it (the writer blocks until read).
    "while IFS=' ' read -r op p c v; do",
    "  case $p$c$v in ''|*[!0-9]*) continue ;; esac",
    '  f=$d/$p',
    '  case $op in',
    '    f) [ -p "$f" ] || mkfifo "$f" ;;',
    '    v) [ -p "$f" ] || mkfifo "$f"; (printf \'%s %s\\n\' "$c" "$v" >"$f") & ;;',
    '    k) k "$p"; echo "K $p" ;;',
    // t N: the modes of /dev/pts/N, the shell's terminal ('-' when they cannot be read).
    '    t) g=$(stty -g 2>/dev/null </dev/pts/"$p"); echo "T $p ${g:--}" ;;',
    '    s) s=; w=; y=; read -r s 2>/dev/null <"/proc/$p/stat"; read -r w 2>/dev/null <"/proc/$p/wchan"; read -r y 2>/dev/null <"/proc/$p/syscall"; echo "S $p $s|$w|$y" ;;',
    '  esac',
    'done',
    // The writers still blocked on a FIFO nobody will read go with the directory.
    'rm -rf "$d"',
    'kill 0',
  ].join('\n');
}

/** The rc file of the captured shell. `dir` is the helper's directory (validated by the caller). */
function rcFile(): string {
  return String.raw`exec 3<&-
if (( BASH_VERSINFO[0] < 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] < 1) )); then exit ${NO_CAPTURE_STATUS}; fi
PS1='\u@\h:\w\$ '
__agate_d=$AGATE_HOOK_DIR
# The variables the hook reads keep their special meaning only as long as nobody unsets them.
readonly __agate_d BASH_COMMAND FUNCNAME BASHPID SRANDOM
unset AGATE_HOOK_DIR
__agate_hook() {
  if [[ ${'$'}{FUNCNAME[1]-} == __agate_rearm ]]; then
    [[ -n 1 ]]
  else
    __agate_x=0
    [[ -o posix && ${'$'}{POSIXLY_CORRECT-} != agate ]] && __agate_x=1
    (( __agate_x )) || POSIXLY_CORRECT=agate
    __agate_c= __agate_v= __agate_r=0
    [[ -o xtrace && -o posix ]] && { __agate_r=1; set +x; }
    if [[ -o posix && -z ${'$'}{__agate_x@a}${'$'}{__agate_c@a}${'$'}{__agate_v@a}${'$'}{__agate_t@a}${'$'}{__agate_n@a}${'$'}{__agate_f@a}${'$'}{__agate_r@a} && $- == *T* && :$BASHOPTS: == *:extdebug:* ]]; then
      __agate_n=$SRANDOM __agate_t=$SRANDOM
      (( __agate_n != __agate_t )) && __agate_c=$__agate_n$__agate_t$SRANDOM$SRANDOM
    fi
    if [[ -n $__agate_c ]]; then
      __agate_t=$BASH_COMMAND
      __agate_t=${'$'}{__agate_t//\\/\\\\}
      __agate_t=${'$'}{__agate_t//$'\n'/\\n}
      __agate_t=${'$'}{__agate_t//$'\r'/\\r}
      __agate_t=${'$'}{__agate_t//$'\t'/\\t}
      __agate_t=${'$'}{__agate_t//\'/\\q}
      trap -- "#AGATE1:$__agate_c:$BASHPID:$__agate_t" RTMAX
      trap -p RTMAX >/dev/tty || __agate_c=
      trap - RTMAX
      __agate_f=$__agate_d/$BASHPID __agate_n=0
      until [[ -z $__agate_c || -p $__agate_f ]] || (( ++__agate_n > 2000000 )); do :; done
      while [[ -n $__agate_c && -p $__agate_f ]]; do
        __agate_v=$(< "$__agate_f") || break
        [[ $'\n'$__agate_v$'\n' == *$'\n'"$__agate_c "[01]$'\n'* ]] && break
      done
    fi
    __agate_s=1
    [[ -n $__agate_c && -z ${'$'}{__agate_v@a}${'$'}{__agate_c@a}${'$'}{__agate_s@a} && $'\n'$__agate_v$'\n' == *$'\n'"$__agate_c 1"$'\n'* ]] && __agate_s=0
    (( __agate_r )) && set -x
    (( __agate_x )) || unset POSIXLY_CORRECT
    [[ -z ${'$'}{__agate_s@a} && $__agate_s == 0 ]]
  fi
}
readonly -f __agate_hook
__agate_rearm() {
  [[ -o posix ]] && { trap __agate_hook DEBUG; set -T; return 0; }
  POSIXLY_CORRECT=agate
  trap __agate_hook DEBUG
  set -T
  unset POSIXLY_CORRECT
}
readonly -f __agate_rearm
PROMPT_COMMAND=__agate_rearm
readonly PROMPT_COMMAND
set -T
shopt -s extdebug
POSIXLY_CORRECT=agate
trap -- "#AGATE1:ready:$$:" RTMAX
trap -p RTMAX >/dev/tty
trap - RTMAX
unset POSIXLY_CORRECT
trap __agate_hook DEBUG
`;
}

/** Where bash and env may live; absolute, so nothing the account put on its PATH is run instead. */
const BASH_PATHS = ['/bin/bash', '/usr/bin/bash', '/usr/local/bin/bash'];

/**
 * The exec command that starts the captured shell on the pty. Run by the account's login shell,
 * which only picks bash and execs it with a scrubbed environment and Agate's rc file on fd 3.
 */
export function shellCommand(dir: string): string {
  if (!/^\/[A-Za-z0-9._/-]+$/.test(dir)) throw new Error(`unexpected hook directory ${JSON.stringify(dir)}`);
  const keep = ['HOME', 'USER', 'LOGNAME', 'PATH', 'MAIL', 'LANG', 'LC_ALL', 'TZ', 'SSH_CONNECTION', 'SSH_TTY']
    .map((v) => `${v}="\${${v}-}"`).join(' ');
  return [
    `B=; for b in ${BASH_PATHS.join(' ')}; do [ -x "$b" ] && { B=$b; break; }; done`,
    `E=/usr/bin/env; [ -x "$E" ] || E=/bin/env`,
    `{ [ -n "$B" ] && [ -x "$E" ]; } || exit ${NO_CAPTURE_STATUS}`,
    `exec "$E" -i ${keep} TERM="\${TERM:-dumb}" SHELL="$B" AGATE_HOOK_DIR='${dir}' "$B" --noprofile --rcfile /dev/fd/3 -i 3<<'__AGATE_RC__'`,
    rcFile(),
    '__AGATE_RC__',
  ].join('\n');
}
