// A hostile agent with a valid token against the SSH proxy, third pass (ssh-hostile.test.ts and
// ssh-hostile-2.test.ts have the first two), driven live: the real OpenSSH client (ssh -T, sftp
// cp, RekeyLimit, SetEnv), and ssh2 as a raw client where OpenSSH would not send the bytes (sftp
// packets that reuse a request id or a closed handle, a pty shell fed pastes and resizes). The
// witnesses are independent of Agate: the files on the target's disk (existence, content, mode)
// and what the client received.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { Command, Response } from '../../schemas/src/events.js';
import { run, type RunResult } from '../harness/proc.js';
import { sshPolicy, SSH_CLIENT_OPTIONS, rawClient, rawShell, sshdUserDir, startSshProxy, stopSshProxy, type SshEnv, recorded } from './ssh-fixture.js';

const POLICY = sshPolicy(`    - id: best-effort-lines
      action: allow
      match: { protocols: [ssh], ssh: { requests: [shell-line] }, shell: { commands: [echo, touch] } }
    - id: locked-dir
      action: deny
      message: the locked directory is read-only
      match: { protocols: [ssh], ssh: { operations: [write, remove, rename, mkdir, rmdir, setstat, symlink], paths: ['/tmp/agate-hostile3-locked-*'] } }
`);

interface Env extends SshEnv {
  /** Owned by the sshd user: the agent may do anything there. */
  open: string;
  /** Owned by the sshd user: policy forbids any change under it; `keep.txt` (mode 0644) must stay as it is. */
  locked: string;
}

const test = suite<Partial<Env>>('e2e/ssh hostile agent, third pass (live)');

test.before(async (ctx) => {
  await startSshProxy(ctx, {
    configYaml: POLICY, name: 'ssh-hostile-3', verdictTimeoutMs: 5000, types: ['Command', 'Verdict', 'Response'],
    prepare: async ({ sshd }) => {
      ctx.open = await sshdUserDir(sshd, 'agate-hostile3-open-');
      ctx.locked = await sshdUserDir(sshd, 'agate-hostile3-locked-');
      await run('install', ['-o', sshd.user, '-m', '644', '/dev/null', join(ctx.locked, 'keep.txt')]);
      writeFileSync(join(ctx.locked, 'keep.txt'), 'keep me');
      await run('install', ['-o', sshd.user, '-m', '644', '/dev/null', join(ctx.open, 'a.txt')]);
    },
  });
});

test.after(async (ctx) => stopSshProxy(ctx, [ctx.open, ctx.locked]));

async function token(env: Env, sub = 'repo:acme/app:ref:refs/heads/main'): Promise<string> {
  return env.issuer.mint({ sub, repository: 'acme/app' }, { alg: 'ES256' });
}

/** The real ssh client through the proxy; the token travels in SSHPASS. */
async function ssh(env: Env, command: string | undefined, extra: string[] = [], input?: string): Promise<RunResult> {
  const args = ['-e', '/usr/bin/ssh', '-p', String(env.port), ...SSH_CLIENT_OPTIONS, ...extra, 'box@127.0.0.1', ...(command === undefined ? [] : [command])];
  return run('sshpass', args, { env: { ...process.env, SSHPASS: await token(env) }, timeoutMs: 30_000, input });
}

/** The real sftp client in batch mode through the proxy. */
async function sftpBatch(env: Env, batch: string): Promise<RunResult> {
  const file = join(env.dir, `batch-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, batch);
  // BatchMode=no before -b: ssh takes an option's first value, and -b would forbid the password.
  return run('sshpass', ['-e', '/usr/bin/sftp', '-o', 'BatchMode=no', '-b', file, '-P', String(env.port), ...SSH_CLIENT_OPTIONS, 'box@127.0.0.1'],
    { env: { ...process.env, SSHPASS: await token(env) }, timeoutMs: 30_000 });
}
const mode = (file: string) => statSync(file).mode & 0o7777;

/** The locked file as the suite made it (a test that failed may have changed it). */
function lockedFile(env: Env): string {
  const keep = join(env.locked, 'keep.txt');
  chmodSync(keep, 0o644);
  return keep;
}

test('sftp: a handle closed and handed out again by the target is not decided as the file it named before', async (ctx) => {
  const env = ctx as Env;
  const keep = lockedFile(env);
  const conn = await rawClient(env);
  try {
    const sftp = await RawSftp.open(conn);
    const first = await sftp.call(openPacket(1, join(env.open, 'a.txt'), READ));
    assert.is(first.type, FXP_HANDLE, 'the allowed open got a handle');
    const handle = first.handle!;
    // One chunk: close the handle, open the locked file for reading (allowed: reading is not
    // refused there), then change the mode through the old handle, which the target gives to the
    // new open (OpenSSH hands out the slot freed last).
    sftp.send(Buffer.concat([closePacket(2, handle), openPacket(3, keep, READ), fsetstatPacket(4, handle, 0o777)]));
    await sftp.replies(3, 10_000);
    sftp.end();
  } finally {
    conn.end();
  }
  assert.is(mode(keep), 0o644, 'a setstat through a reused handle changed a file under the locked directory');
  const { response } = await recorded(env, (c) => c.text === '(subsystem sftp)');
  assert.is(response.error_code, 'PROTOCOL_VIOLATION');
  assert.match(response.error_message ?? '', /names a handle that no open of this channel returned, or that was closed/);
});

test('sftp: a request id still awaiting its reply cannot be reused to make the target\'s answer count for another path', async (ctx) => {
  const env = ctx as Env;
  const keep = lockedFile(env);
  const conn = await rawClient(env);
  let closedWith = '';
  try {
    const sftp = await RawSftp.open(conn);
    // Two opens with one id: the target answers the first (the locked file, a handle) and the
    // second (no such file); whichever path Agate pairs the handle with is what it decides later.
    sftp.send(Buffer.concat([openPacket(7, keep, READ), openPacket(7, join(env.open, 'missing'), READ)]));
    const replies = await sftp.replies(2, 10_000);
    const handle = replies.find((r) => r.type === FXP_HANDLE)?.handle;
    if (handle !== undefined) {
      sftp.send(fsetstatPacket(8, handle, 0o777));
      await sftp.replies(1, 10_000);
    }
    closedWith = sftp.stderr;
    sftp.end();
  } finally {
    conn.end();
  }
  assert.is(mode(keep), 0o644, 'a setstat through a handle paired with another path changed a file under the locked directory');
  assert.match(closedWith, /request id 7 is still awaiting its reply/);
});

test('sftp cp (copy-data): the target copies into a file Agate records as written by a copy it did not see; not into the locked directory', async (ctx) => {
  const env = ctx as Env;
  writeFileSync(join(env.open, 'a.txt'), 'copied content');
  const into = await sftpBatch(env, `cp ${env.open}/a.txt ${env.locked}/copy.txt\n`);
  assert.is.not(into.code, 0, into.stdout);
  assert.not.ok(existsSync(join(env.locked, 'copy.txt')), 'sftp cp wrote under the locked directory');
  const r = await sftpBatch(env, `cp ${env.open}/a.txt ${env.open}/b.txt\n`);
  assert.is(r.code, 0, r.stderr);
  assert.is(readFileSync(join(env.open, 'b.txt'), 'utf8'), 'copied content');
  const { response } = await recorded(env, (c) => c.attributes.operation === 'write' && c.attributes.path === `${env.open}/b.txt`);
  assert.is(response.status, 'ok');
  assert.is(response.digest, null, 'no digest of bytes Agate did not see');
  assert.match(response.command_tag ?? '', /server-side copy-data request\(s\) wrote into it/);
});

/** A file the sshd user owns, for a command to try to delete. */
async function victim(env: Env, name: string): Promise<string> {
  const file = join(env.open, name);
  assert.is((await run('install', ['-o', env.sshd.user, '-m', '644', '/dev/null', file])).code, 0);
  return file;
}

test('a shell without a pty (ssh -T): a refused line never reaches the shell, and keys a terminal would edit with are read as the shell reads them', async (ctx) => {
  const env = ctx as Env;
  const v = await victim(env, 'piped');
  // No terminal on the target: bash reads stdin as it comes, so what is sent before the
  // decision, and the ^C meant to discard a refused line, are shell input like any other.
  const attempts = [
    `rm -f ${v} \n\n`, // refused, then a blank line would have run it
    `rm -f ${v};\x15echo ok\n`, // ^U erases on a terminal, not on a pipe
    `rm -f ${v};\x03echo ok\n`, // so does ^C
    `rm -f ${v};${'\x7f'.repeat(100)}echo ok\n`, // backspaces erase on a terminal only
    `rm -f ${v}\recho ok\n`, // a CR ends no line for bash on a pipe
  ];
  for (const input of attempts) {
    const r = await ssh(env, undefined, ['-T'], input);
    assert.ok(existsSync(v), `${JSON.stringify(input)} deleted the file: ${r.stdout}${r.stderr}`);
    // A CR inside the line is refused before the rules: the grammar reads it as a blank, bash as a letter.
    assert.match(r.stderr, input.includes('\r') ? /Agate refused the command by rule "agate.unparseable"/ : /Agate refused the command by rule "no-rm"/, JSON.stringify(input));
  }
  // Recorded as bash read it: the ^U is a byte of the line, not an erase.
  const { verdict } = await recorded(env, (c) => c.text === `rm -f ${v};\x15echo ok` && c.attributes.request === 'shell-line');
  assert.is(verdict?.rule_id, 'no-rm');
  // The control: allowed lines run, in order, and a last line without LF runs too.
  const ok = await ssh(env, undefined, ['-T'], `echo one\ntouch ${v}.two`);
  assert.is(ok.stdout, 'one\n', ok.stderr);
  assert.ok(existsSync(`${v}.two`), 'the last line without LF ran');
});

test('probes that held: rekeying every KiB, SetEnv carrying commands, a client that never reads its output', async (ctx) => {
  const env = ctx as Env;
  // Rekeying mid-session (a new key exchange every KiB) changes nothing the gate decides.
  const v = await victim(env, 'rekeyed');
  const rekeyed = await ssh(env, `head -c 300000 /dev/zero | wc -c; rm -f ${v}`, ['-o', 'RekeyLimit=1K']);
  assert.is(rekeyed.code, 126, rekeyed.stderr);
  assert.ok(existsSync(v));
  const counted = await ssh(env, 'head -c 300000 /dev/zero | wc -c', ['-o', 'RekeyLimit=1K']);
  assert.is(counted.stdout.trim(), '300000', counted.stderr);
  // Environment requests are refused, never forwarded: LC_* and BASH_ENV cannot carry a command.
  const marker = join(env.open, 'env-ran');
  const envd = await ssh(env, 'echo "[$LC_X][$BASH_ENV]"', ['-o', `SetEnv="LC_X=$(touch ${marker})" BASH_ENV=/dev/null`]);
  assert.is(envd.stdout, '[][]\n', envd.stderr);
  assert.not.ok(existsSync(marker));
  // A client that stops reading: the proxy stops reading the target (SSH window), it does not buffer.
  const conn = await rawClient(env);
  try {
    const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) => conn.exec('head -c 500000000 /dev/zero', (err, s) => (err ? reject(err) : resolve(s))));
    let got = 0;
    stream.on('data', (d: Buffer) => {
      got += d.length;
      if (got > 1_000_000) stream.pause();
    });
    const before = process.memoryUsage().rss;
    await new Promise((r) => setTimeout(r, 4000));
    const grown = process.memoryUsage().rss - before;
    assert.ok(grown < 64 * 1024 * 1024, `the proxy's process grew by ${grown} bytes while the client did not read`);
    assert.ok(got < 16 * 1024 * 1024, `${got} bytes reached a client that stopped reading`);
    stream.close();
  } finally {
    conn.end();
  }
});

test('probes that held on a captured shell: window-change spam, a bracketed paste of several commands (its rm ends the shell), a 5 KB line', async (ctx) => {
  const env = ctx as Env;
  const v = await victim(env, 'pasted');
  const conn = await rawClient(env);
  try {
    const shell = await rawShell(conn, { term: 'xterm', cols: 80, rows: 24 });
    await shell.until(/\$ $/);
    // Window changes by the thousand: each is passed on and recorded; the shell still answers.
    for (let i = 0; i < 2000; i += 1) shell.resize(24 + (i % 10), 80 + (i % 7));
    shell.resize(30, 90);
    await new Promise((r) => setTimeout(r, 2000)); // bash settles back at its prompt after the SIGWINCH storm
    shell.type('stty size\r');
    await shell.until(/\r30 90\r\n[^]*\$ $/);
    // Typed at the prompt, the rm reaches bash, whose hook decides it exactly.
    shell.type(`rm -f ${v}\r`);
    await shell.until(/Agate refused the command by rule "no-rm"[^]*\$ $/);
    // A paste of several lines: bash runs none of them until the paste ends, so the proxy cannot
    // tell its lines after the first went to bash; it decides them as typed and refuses the rm,
    // whose keys already reached the target: Agate ends the shell. Nothing of the paste runs.
    shell.type(`\x1b[200~echo pasted-one\rrm -f ${v}\recho pasted-two\x1b[201~\r`);
    assert.ok(await shell.closed(15_000), `the shell went on after a refused pasted line: ${JSON.stringify(shell.screen().slice(-300))}`);
    assert.match(shell.screen(), /Agate refused the command by rule "(no-rm|agate.shell-line-inexact)"[^]*\r\nAgate ended the shell/);
    // A line past what the proxy rebuilds from keys (4 KiB): refused by the hook (rm) when bash
    // reads it at its prompt (the shell goes on), or as typed (edited) when bash is still echoing
    // it as Enter comes (the shell ends: its keys were sent). Either way it does not run.
    // (Longer lines are refused by the hook past 256 KiB; readline takes minutes to echo one here.)
    const flooded = await rawShell(conn, { term: 'xterm', cols: 80, rows: 24 });
    await flooded.until(/\$ $/);
    flooded.type(`rm -f ${v} ${'x'.repeat(5000)}\r`);
    await flooded.until(/Agate refused the command by rule "(no-rm|agate.shell-line-inexact)"[^]*(\$ $|\r\nAgate ended the shell)/, 60_000);
  } finally {
    conn.end();
  }
  assert.ok(existsSync(v), 'a pasted or flooded rm ran');
  const { verdict } = await recorded(env, (c) => c.text === `rm -f ${v}` && c.attributes.captured === 'bash');
  assert.is(verdict?.rule_id, 'no-rm');
});

test('a line typed into a program on a pty (ed after stty -isig) and refused ends the shell: the ^C may not have discarded it', async (ctx) => {
  const env = ctx as Env;
  const v = await victim(env, 'typed-into-ed');
  const conn = await rawClient(env);
  try {
    const shell = await rawShell(conn, { term: 'xterm', cols: 80, rows: 24 });
    await shell.until(/\$ $/);
    // ^C is now a plain character: the interrupt Agate sends for a refused line discards nothing.
    shell.type('stty -isig\r');
    await shell.until(/\$ $/);
    shell.type("ed -p 'ed> '\r");
    await shell.until(/\red> $/);
    // ed reads this line, not bash: decided as typed and refused. The trailing `#` would make the
    // ^C a comment, and the next Enter would run the rm, had the shell gone on.
    shell.type(`!rm -f ${v} #\r`);
    shell.type('\r');
    const closed = await shell.closed(20_000);
    assert.ok(existsSync(v), 'the refused line typed into ed ran');
    assert.ok(closed, `the shell went on after the refused line: ${JSON.stringify(shell.screen().slice(-300))}`);
    assert.match(shell.screen(), /Agate refused the command by rule "(no-rm|agate.shell-line-inexact)"[^]*Agate ended the shell: keys of the refused line had already reached it and cannot be taken back/);
  } finally {
    conn.end();
  }
  const line = await recorded(env, (c) => c.text === `!rm -f ${v} #` && c.attributes.request === 'shell-line');
  assert.is(line.verdict?.decision, 'deny');
  assert.is(line.response.status, 'refused');
  const shell = await recorded(env, (c) => c.event_id === line.command.attributes.shell_command_id);
  assert.is(shell.command.attributes.request, 'shell');
  const ended = await channelEnd(env, shell.command);
  assert.is(ended.status, 'error');
  assert.is(ended.error_code, 'SHELL_LINE_NOT_RETRACTABLE');
  assert.match(ended.error_message ?? '', /^Agate refused the command by rule "(no-rm|agate.shell-line-inexact)"[^]*; Agate ended the shell: keys of the refused line had already reached it/);
});

/** How a shell channel ended: its Response other than the parts of its recording. */
async function channelEnd(env: Env, shell: Command): Promise<Response> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const end = env.events.find((e): e is Response => e.type === 'Response' && e.command_id === shell.event_id && !(e.command_tag ?? '').startsWith('asciicast'));
    if (end !== undefined) return end;
    if (Date.now() > deadline) assert.unreachable('the shell\'s end was not recorded');
    await new Promise((r) => setTimeout(r, 25));
  }
}

// SFTP v3 packets, written by hand (draft-ietf-secsh-filexfer-02): uint32 length | byte type | …
const FXP_INIT = 1;
const FXP_OPEN = 3;
const FXP_CLOSE = 4;
const FXP_FSETSTAT = 10;
const FXP_STATUS = 101;
const FXP_HANDLE = 102;
const READ = 0x01;
const ATTR_PERMISSIONS = 0x04;

function sftpString(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(b.length);
  return Buffer.concat([len, b]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function packet(type: number, ...fields: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from([type]), ...fields]);
  return Buffer.concat([u32(body.length), body]);
}

function openPacket(id: number, path: string, flags: number): Buffer {
  return packet(FXP_OPEN, u32(id), sftpString(path), u32(flags), u32(0));
}

function closePacket(id: number, handle: Buffer): Buffer {
  return packet(FXP_CLOSE, u32(id), sftpString(handle));
}

function fsetstatPacket(id: number, handle: Buffer, perms: number): Buffer {
  return packet(FXP_FSETSTAT, u32(id), sftpString(handle), u32(ATTR_PERMISSIONS), u32(perms));
}

interface RawReply {
  type: number;
  id: number;
  handle?: Buffer;
  code?: number;
  message?: string;
}

/** An sftp channel spoken byte by byte: packets out as given, replies framed and decoded as far as these tests need. */
class RawSftp {
  #buffer = Buffer.alloc(0);
  readonly #replies: RawReply[] = [];
  #wake: (() => void) | undefined;
  stderr = '';
  closed = false;

  private constructor(private readonly stream: ssh2.ClientChannel) {
    stream.on('data', (d: Buffer) => this.#data(d));
    stream.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    stream.on('close', () => {
      this.closed = true;
      this.#wake?.();
    });
  }

  static async open(conn: ssh2.Client): Promise<RawSftp> {
    const stream = await new Promise<ssh2.ClientChannel>((resolve, reject) => conn.subsys('sftp', (err, s) => (err ? reject(err) : resolve(s))));
    const sftp = new RawSftp(stream);
    sftp.send(Buffer.concat([u32(5), Buffer.from([FXP_INIT]), u32(3)]));
    await sftp.replies(1, 10_000);
    return sftp;
  }

  send(bytes: Buffer): void {
    this.stream.write(bytes);
  }

  async call(bytes: Buffer): Promise<RawReply> {
    this.send(bytes);
    const [reply] = await this.replies(1, 10_000);
    if (reply === undefined) assert.unreachable(`no reply; the channel closed: ${this.stderr}`);
    return reply!;
  }

  /** The next `n` replies, fewer when the channel closes or the deadline passes first. */
  async replies(n: number, timeoutMs: number): Promise<RawReply[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.#replies.length < n && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.#wake = () => (clearTimeout(t), resolve());
      });
    }
    return this.#replies.splice(0, n);
  }

  end(): void {
    this.stream.end();
  }

  #data(d: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, d]);
    while (this.#buffer.length >= 4 && this.#buffer.length >= 4 + this.#buffer.readUInt32BE(0)) {
      const len = this.#buffer.readUInt32BE(0);
      const body = this.#buffer.subarray(4, 4 + len);
      this.#buffer = this.#buffer.subarray(4 + len);
      const type = body[0]!;
      const reply: RawReply = { type, id: type === 2 ? 0 : body.readUInt32BE(1) };
      if (type === FXP_HANDLE) reply.handle = Buffer.from(body.subarray(9, 9 + body.readUInt32BE(5)));
      if (type === FXP_STATUS) {
        reply.code = body.readUInt32BE(5);
        reply.message = body.length > 13 ? body.subarray(13, 13 + body.readUInt32BE(9)).toString() : '';
      }
      this.#replies.push(reply);
      this.#wake?.();
    }
  }
}

test.run();
