// A hostile agent with a valid token against the SSH proxy, fifth pass (ssh-hostile*.test.ts have
// the first four): a captured command held for approval that the shell stops waiting for, and
// lines typed while the captured bash reads the rest of a multi-line construct. The witnesses are
// independent of Agate: the target's disk and what the client received.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nowMicros, type ApprovalDecision, type Command, type Response, type Verdict } from '../../schemas/src/events.js';
import { sshPolicy, rawClient, rawExec, rawShell, sshdUserDir, startSshProxy, stopSshProxy, type SshEnv } from './ssh-fixture.js';

const POLICY = sshPolicy(`    - { id: cp-needs-approval, action: hold, match: { protocols: [ssh], shell: { commands: [cp] } }, approval: { timeout_s: 60 } }
    - { id: listeners, action: allow, match: { protocols: [ssh], ssh: { requests: [tcpip-forward] } } }
    # The operator accepts typed lines as best effort: a continuation line is decided as typed.
    - { id: typed-lines, action: allow, match: { protocols: [ssh], ssh: { requests: [shell-line] } } }
`);

interface Env extends SshEnv { open: string }
const test = suite<Partial<Env>>('e2e/ssh hostile agent, fifth pass (live)');

test.before(async (ctx) => {
  await startSshProxy(ctx, {
    configYaml: POLICY, name: 'ssh-hostile-5', verdictTimeoutMs: 5000, types: ['Command', 'Verdict', 'Response', 'ApprovalRequested'],
    prepare: async ({ sshd }) => { ctx.open = await sshdUserDir(sshd, 'agate-hostile5-'); },
  });
});
test.after(async (ctx) => stopSshProxy(ctx, [ctx.open]));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The held Command of `text` and its ApprovalRequested, once both are recorded. */
async function held(env: Env, text: string): Promise<{ command: Command; approvalId: string }> {
  for (let waited = 0; waited < 15_000; waited += 50) {
    const command = env.events.find((e): e is Command => e.type === 'Command' && e.text === text);
    const request = command && env.events.find((e) => e.type === 'ApprovalRequested' && e.command_id === command.event_id);
    if (request?.type === 'ApprovalRequested') return { command: command!, approvalId: request.approval_id };
    await sleep(50);
  }
  throw new Error(`"${text}" was not held`);
}

/** An approver's approval, as the query API would put it on the bus; resolves once the final verdict is recorded. */
async function approve(env: Env, command: Command, approvalId: string): Promise<void> {
  const answer: ApprovalDecision = {
    type: 'ApprovalDecision', event_id: randomUUID(), time: nowMicros(), session_id: command.session_id, approval_id: approvalId, command_id: command.event_id,
    decision: 'approve', approver_issuer: 'https://idp.example.com', approver_subject: 'alice', approver_claims: {}, comment: 'looks fine', refused_reason: null,
  };
  await env.bus.publish(answer);
  for (let waited = 0; waited < 15_000; waited += 50) {
    if (env.events.some((e) => e.type === 'Verdict' && e.command_id === command.event_id && e.decision === 'allow')) return;
    await sleep(50);
  }
  assert.unreachable('the approval released nothing');
}

/** Every Response recorded for `command` (a command has one). */
function responses(env: Env, command: Command): Response[] {
  return env.events.filter((e): e is Response => e.type === 'Response' && e.command_id === command.event_id);
}

test('a held captured command the shell stopped waiting for (^C) is recorded as not run, and an approval after that neither runs it nor records it as run', async (ctx) => {
  const env = ctx as Env;
  const v = join(env.open, 'interrupted-copy');
  const text = `cp /etc/hostname ${v}`;
  const conn = await rawClient(env);
  try {
    const shell = await rawShell(conn);
    await shell.until(/\$ $/);
    shell.type(`${text}; echo after-held\r`);
    await shell.until(/holding this command for approval/);
    shell.type('\x03'); // the terminal makes it a SIGINT to bash, whose hook stops waiting
    await shell.until(/\$ $/);
    shell.type('echo still-$((1+1))\r');
    await shell.until(/still-2\r\n/);
    const { command, approvalId } = await held(env, text);
    // The record says so before anyone answers: the approver's view can show it.
    for (let waited = 0; responses(env, command).length === 0 && waited < 10_000; waited += 50) await sleep(50);
    const [given] = responses(env, command);
    assert.ok(given, 'the interrupted command has a Response');
    assert.equal([given!.status, given!.error_code], ['error', 'SHELL_COMMAND_ABANDONED'], given!.error_message ?? '');
    await approve(env, command, approvalId);
    await sleep(500);
    shell.type('echo later\r');
    await shell.until(/later\r\n[^]*\$ $/);
    assert.not.ok(existsSync(v), 'the approved command ran after the shell gave up on it');
    assert.equal(responses(env, command).map((r) => r.status), ['error'], 'one Response, and it does not say the command ran');
  } finally {
    conn.end();
  }
  assert.not.ok(env.events.some((e) => e.type === 'Command' && e.text === 'echo after-held'), 'the rest of the interrupted line ran');
});

test('a held command of a subshell that a ^C killed is recorded as not run once bash is back at its prompt', async (ctx) => {
  const env = ctx as Env;
  const v = join(env.open, 'subshell-copy');
  const text = `cp /etc/hostname ${v}`;
  const conn = await rawClient(env);
  try {
    const shell = await rawShell(conn);
    await shell.until(/\$ $/);
    shell.type(`(${text})\r`);
    await shell.until(/holding this command for approval/);
    shell.type('\x03');
    await shell.until(/\$ $/);
    const { command, approvalId } = await held(env, text);
    for (let waited = 0; responses(env, command).length === 0 && waited < 10_000; waited += 50) await sleep(50);
    const [given] = responses(env, command);
    assert.ok(given, 'the killed subshell\'s command has a Response');
    assert.equal([given!.status, given!.error_code], ['error', 'SHELL_COMMAND_ABANDONED'], given!.error_message ?? '');
    await approve(env, command, approvalId);
    await sleep(500);
    assert.not.ok(existsSync(v), 'the approved command ran after its subshell was killed');
    assert.equal(responses(env, command).map((r) => r.status), ['error']);
  } finally {
    conn.end();
  }
});

test('the control: a held command of a background subshell still waits while bash goes on, and runs once approved', async (ctx) => {
  const env = ctx as Env;
  const v = join(env.open, 'background-copy');
  const text = `cp /etc/hostname ${v}`;
  const conn = await rawClient(env);
  try {
    const shell = await rawShell(conn);
    await shell.until(/\$ $/);
    shell.type(`(${text}) &\r`);
    await shell.until(/holding this command for approval/);
    shell.type('echo meanwhile-$((5*5))\r');
    await shell.until(/meanwhile-25\r\n/);
    const { command, approvalId } = await held(env, text);
    await sleep(500);
    assert.equal(responses(env, command), [], 'the waiting job\'s command is not settled');
    await approve(env, command, approvalId);
    for (let waited = 0; !existsSync(v) && waited < 10_000; waited += 50) await sleep(50);
    assert.ok(existsSync(v), 'the approved background command ran');
    for (let waited = 0; responses(env, command).length === 0 && waited < 10_000; waited += 50) await sleep(50);
    assert.equal(responses(env, command).map((r) => r.status), ['ok']);
  } finally {
    conn.end();
  }
});

test('a held captured command whose client left is recorded as not run; an approval after that records no run', async (ctx) => {
  const env = ctx as Env;
  const v = join(env.open, 'orphaned-copy');
  const text = `cp /etc/hostname ${v}`;
  const conn = await rawClient(env);
  const shell = await rawShell(conn);
  await shell.until(/\$ $/);
  shell.type(`${text}\r`);
  await shell.until(/holding this command for approval/);
  conn.end();
  const { command, approvalId } = await held(env, text);
  for (let waited = 0; responses(env, command).length === 0 && waited < 10_000; waited += 50) await sleep(50);
  const [given] = responses(env, command);
  assert.ok(given, 'the orphaned command has a Response');
  assert.equal([given!.status, given!.error_code], ['error', 'SHELL_COMMAND_ABANDONED'], given!.error_message ?? '');
  await approve(env, command, approvalId);
  await sleep(500);
  assert.not.ok(existsSync(v), 'the approved command ran after its client left');
  assert.equal(responses(env, command).map((r) => r.status), ['error'], 'one Response, and it does not say the command ran');
});

test('probes that held: a refused command split over continuation lines is reported exactly when bash runs it and refused; a loop, function or here-document typed over lines ends the shell at its first line that does not parse alone', async (ctx) => {
  const env = ctx as Env;
  const files = ['split', 'looped', 'deferred', 'heredoc'].map((n) => join(env.open, n));
  const { execFileSync } = await import('node:child_process');
  for (const f of files) execFileSync('install', ['-o', env.sshd.user, '-m', '644', '/dev/null', f]);
  const [split, looped, deferred, heredoc] = files as [string, string, string, string];
  const since = env.events.length;
  const conn = await rawClient(env);
  const ended: string[] = [];
  try {
    // Each first line goes to bash at its prompt; each continuation is decided as typed, where no rm shows.
    for (const lines of [
      ['r\\', `m -f ${split}`],
      ['for i in 1; do', '  r\\', `m -f ${looped}`, 'done'],
      ['f() {', '  r\\', `m -f ${deferred}`, '}', 'f'],
      ['cat <<EOF', '$(r\\', `m -f ${heredoc})`, 'EOF'],
    ]) {
      const shell = await rawShell(conn);
      await shell.until(/\$ $/);
      const from = shell.screen().length;
      for (const line of lines) {
        shell.type(`${line}\r`);
        await sleep(1200); // past the wait for bash's report on a continuation line
      }
      for (let waited = 0; !/deleting files needs a human[^]*\$ $|Agate ended the shell/.test(shell.screen().slice(from)); waited += 50) {
        if (waited > 15_000) assert.unreachable(`no refusal for ${JSON.stringify(lines)}: ${JSON.stringify(shell.screen().slice(from))}`);
        await sleep(50);
      }
      if (/Agate ended the shell/.test(shell.screen().slice(from))) ended.push(lines[0]!);
      shell.close();
    }
  } finally {
    conn.end();
  }
  for (const f of files) assert.ok(existsSync(f), `${f} was deleted`);
  const captured = env.events.slice(since).filter((e): e is Command => e.type === 'Command' && e.attributes.captured === 'bash');
  const verdict = (c: Command) => env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === c.event_id);
  // \\-newline: bash joined the lines and its hook reported the rm they make.
  const rm = captured.find((c) => c.text === `rm -f ${split}`);
  assert.ok(rm, 'bash reported the joined rm');
  assert.is(verdict(rm!)?.rule_id, 'no-rm');
  assert.equal(ended, ['for i in 1; do', 'f() {', 'cat <<EOF'], 'a continuation that does not parse alone (`  r\\`, `$(r\\`) is refused as typed');
  const typed = env.events.slice(since).filter((e): e is Command => e.type === 'Command' && e.attributes.best_effort === 'true');
  assert.ok(typed.some((c) => c.text === `m -f ${split}` && verdict(c)?.decision === 'allow'));
  assert.ok(typed.some((c) => c.text === '  r\\' && verdict(c)?.rule_id === 'agate.unparseable'));
});

/**
 * A bash nested on a terminal of its own, where no hook reports: started by inline code, which
 * Agate does not read (`script -qc 'bash'` is refused: bash would read its program from the
 * terminal). These tests once spelt it `script -qc 'PS1=…$\  bash'`, which passed only because the
 * grammar misread the escaped blank (ssh-hostile-6.test.ts). The prompt is worked out by bash, so
 * the typed line's echo does not match it.
 */
const NESTED_BASH = `PS1='nested-$((6*7))$ ' /usr/bin/python3 -c 'import pty; pty.spawn(["bash", "--norc", "--noprofile"])'`;

test('a shell nested where no hook reports (a pty from inline code): keys that make readline run the line without an Enter (^O, ^X^E) are decided like an Enter', async (ctx) => {
  const env = ctx as Env;
  const files = ['operate', 'edit-execute'].map((n) => join(env.open, n));
  const { execFileSync } = await import('node:child_process');
  for (const f of files) execFileSync('install', ['-o', env.sshd.user, '-m', '644', '/dev/null', f]);
  const [operate, editExecute] = files as [string, string];
  const since = env.events.length;
  const conn = await rawClient(env);
  try {
    // vi mode's ESC Enter: the next test; ESC v and ^D end a line too (line-tracker.test.ts).
    for (const [file, keys] of [[editExecute, '\x18\x05'], [operate, '\x0f']] as const) {
      const shell = await rawShell(conn);
      await shell.until(/\$ $/);
      // EDITOR=true: edit-and-execute-command runs the line as typed. The nested bash reads no startup file.
      shell.type(`EDITOR=true ${NESTED_BASH}\r`);
      await shell.until(/nested-42\$ $/);
      shell.type(`rm -f ${file}${keys}`);
      await shell.until(/Agate ended the shell/);
      assert.ok(await shell.closed(5000), 'the shell was ended');
    }
  } finally {
    conn.end();
  }
  for (const f of files) assert.ok(existsSync(f), `${f} was deleted by a line no one decided`);
  const typed = env.events.slice(since).filter((e): e is Command => e.type === 'Command' && e.attributes.best_effort === 'true');
  for (const f of files) {
    const line = typed.find((c) => c.text === `rm -f ${f}`);
    assert.ok(line, `no typed line rm -f ${f} in ${JSON.stringify(typed.map((c) => c.text))}`);
    assert.is(env.events.find((e): e is Verdict => e.type === 'Verdict' && e.command_id === line!.event_id)?.rule_id, 'no-rm', f);
  }
});

/** The kernel's State and pending-signal lines of a local process ('' once it is gone). */
function procStatus(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').filter((l) => /^(State|ShdPnd|SigPnd):/.test(l)).join('; ');
  } catch {
    return '';
  }
}

/** Whether a local process is gone, a zombie, or has a SIGKILL (signal 9: bit 0x100) pending. */
function killed(pid: number): boolean {
  const status = procStatus(pid);
  if (status === '' || /State:\s+Z/.test(status)) return true;
  return [...status.matchAll(/(?:ShdPnd|SigPnd):\s+([0-9a-f]+)/g)].some((m) => (BigInt(`0x${m[1]}`) & 0x100n) !== 0n);
}

test('a shell nested where no hook reports, in vi mode with ^C no signal: a refused line ended with ESC Enter does not run when Agate ends the shell (the hangup reads as ^D, which would accept it)', async (ctx) => {
  const env = ctx as Env;
  const { execFileSync } = await import('node:child_process');
  const files = [1, 2, 3, 4, 5].map((n) => join(env.open, `vi-mode-${n}`)); // whether the ^D or the hangup reaches the nested bash first varies: several tries
  for (const f of files) execFileSync('install', ['-o', env.sshd.user, '-m', '644', '/dev/null', f]);
  const conn = await rawClient(env);
  try {
    for (const file of files) {
      const shell = await rawShell(conn);
      await shell.until(/\$ $/);
      shell.type(`${NESTED_BASH}\r`);
      await shell.until(/nested-42\$ $/);
      // Without isig the ^C Agate sends in place of the Enter is a plain key: only ending the shell can save the line.
      const from = shell.screen().length;
      shell.type('stty -isig; set -o vi; echo nested-pid-$$\r');
      await shell.until(/nested-42\$ $/);
      const pid = /nested-pid-(\d+)\r\n/.exec(shell.screen().slice(from))?.[1];
      assert.ok(pid, 'the nested bash said its pid');
      shell.type(`rm -f ${file}\x1b\r`);
      await shell.until(/Agate ended the shell/);
      assert.ok(await shell.closed(5000), 'the shell was ended');
      // Killed before the client saw the shell end, not merely hung up: gone, a zombie, or a SIGKILL
      // pending (it will run no more code; the kernel may not have scheduled its exit yet).
      assert.ok(killed(Number(pid)), `the nested bash ${pid} was not killed: ${procStatus(Number(pid))}`);
    }
    await sleep(1500); // whatever was left on the target has had time to act
  } finally {
    conn.end();
  }
  for (const f of files) assert.ok(existsSync(f), `${f} was deleted by a refused line`);
});

test('-R listeners asked for all at once stay within the per-connection cap (16): the ones past it are refused and recorded, and the target never bound them', async (ctx) => {
  const env = ctx as Env;
  const since = env.events.length;
  const conn = await rawClient(env);
  try {
    const asked = await Promise.all(Array.from({ length: 40 }, () => new Promise<number | undefined>((resolve) => conn.forwardIn('127.0.0.1', 0, (err, port) => resolve(err ? undefined : port)))));
    const granted = asked.filter((p): p is number => p !== undefined);
    assert.is(granted.length, 16, `${granted.length} of 40 listeners were granted`);
    const bound = () => env.events.slice(since).filter((e): e is Response => e.type === 'Response' && /^listening on /.test(e.command_tag ?? '')).length;
    const refused = () => env.events.slice(since).filter((e): e is Verdict => e.type === 'Verdict' && e.rule_id === 'agate.refused-unasked').length;
    for (let waited = 0; (bound() < 16 || refused() < 24) && waited < 10_000; waited += 50) await sleep(50);
    await sleep(300); // and nothing more comes
    assert.is(bound(), 16, 'the target bound no more than the cap');
    assert.is(refused(), 24, 'each one past the cap is recorded as refused');
  } finally {
    conn.end();
  }
});

test('probes that held: channels at scale on one connection — 40 at once get at most the cap, a closed channel\'s slot and id are reused, an exec runs while a shell on the same connection waits on a hold', async (ctx) => {
  const env = ctx as Env;
  const since = env.events.length;
  const conn = await rawClient(env);
  try {
    const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => rawExec(conn, `echo burst-${i}`)));
    const ran = burst.filter((r) => r.code === 0);
    assert.ok(ran.length >= 1 && ran.length <= 16, `${ran.length} of 40 ran`);
    for (const r of ran) assert.match(r.stdout, /^burst-\d+\n$/);
    // Every one that ran was recorded; none ran unrecorded.
    const recordedTexts = new Set(env.events.slice(since).filter((e): e is Command => e.type === 'Command').map((c) => c.text));
    for (const r of ran) assert.ok(recordedTexts.has(r.stdout.trim().replace(/^/, 'echo ')), r.stdout);
    // One after another: ssh2 reuses the lowest free channel id; each is decided afresh.
    for (let i = 0; i < 30; i++) {
      const r = await rawExec(conn, `echo seq-${i}`);
      assert.is(r.stdout, `seq-${i}\n`, r.stderr);
    }
    const shell = await rawShell(conn);
    await shell.until(/\$ $/);
    shell.type(`cp /etc/hostname ${join(env.open, 'interleaved')}\r`);
    await shell.until(/holding this command for approval/);
    const beside = await rawExec(conn, 'echo beside-the-hold');
    assert.is(beside.stdout, 'beside-the-hold\n', beside.stderr);
    shell.type('\x03');
    await shell.until(/\$ $/);
  } finally {
    conn.end();
  }
  assert.not.ok(existsSync(join(env.open, 'interleaved')));
});

test.run();
