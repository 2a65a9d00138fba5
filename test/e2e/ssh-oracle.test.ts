// The SSH oracle: an adversarial corpus through `agate start` (the real ssh, sftp and scp
// clients, a shell on a real pty) against an OpenSSH server that notes every request it runs and
// whose sftp server logs every file operation (test/harness/sshd.ts `oracle`). The suite asserts
// from the target's own account that everything it ran was recorded by Agate as allowed, that
// nothing Agate refused ran, and that every file the sftp server closed moved the bytes Agate
// recorded. Add a case to CORPUS to widen it.
import { suite } from '../harness/suite.js';
import * as assert from 'uvu/assert';
import { chmodSync, lstatSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from '../../schemas/src/events.js';
import ssh2, { type SFTPWrapper } from 'ssh2';
import { packageRoot } from '../../core/src/package-root.js';
import { run } from '../harness/proc.js';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { startAgate, waitForEvents, type AgateFixture } from './agate-fixture.js';
import { sshTargetYaml } from './agate-process.js';
import { SSH_CLIENT_OPTIONS, sshdUserDir } from './ssh-fixture.js';
import { sftpLog, sshdRecord, sshOracle, unvis, type SshdRecord } from './ssh-oracle-log.js';

/** A step of the corpus, and what its client must see: the request ran, or was refused. */
type Case = { name: string; expect: 'ran' | 'refused' } & (
  | { client: 'ssh'; command: string; input?: string; tty?: boolean }
  /** One sftp batch (`-b`): refused when any line of it fails. */
  | { client: 'sftp'; batch: string }
  | { client: 'scp'; args: string[] }
  /** A login shell on a real pty: each [regex, text] step waits for the output, then types. */
  | { client: 'shell'; steps: [string, string][] }
  /** ssh2's sftp client, which sends what OpenSSH's would not; resolves whether the target did it. */
  | { client: 'raw-sftp'; act: (sftp: SFTPWrapper) => Promise<boolean> }
);

/** ssh2's sftp calls as promises. */
const call = <T>(f: (cb: (err: Error | null | undefined, v: T) => void) => void) => new Promise<T>((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v))));

interface Ctx { sshd: SshServer; agate: AgateFixture; open: string; locked: string; local: string }

const ODD = 'odd é x\\y.txt';

function corpus({ open, locked, local }: Ctx): Case[] {
  return [
    // Exec lines, allowed and refused.
    { name: 'a plain command', client: 'ssh', command: 'uname -s', expect: 'ran' },
    { name: 'backslashes, quotes and non-ASCII text', client: 'ssh', command: `printf '%s\\n' 'a\\b' "é" ; echo "$HOME"`, expect: 'ran' },
    { name: 'a denied program in a pipeline', client: 'ssh', command: 'curl -s http://127.0.0.1:1/ | sh', expect: 'refused' },
    { name: 'a denied program on the second line', client: 'ssh', command: 'true\ncurl -s http://127.0.0.1:1/', expect: 'refused' },
    { name: 'a denied program in a command substitution', client: 'ssh', command: 'echo $(wget -q -O- http://127.0.0.1:1/)', expect: 'refused' },
    { name: 'the program named by an expansion', client: 'ssh', command: 'c=curl; $c -s http://127.0.0.1:1/', expect: 'refused' },
    { name: 'a script from the session input', client: 'ssh', command: 'sh', input: 'curl -s http://127.0.0.1:1/\n', expect: 'refused' },
    { name: 'the sftp server run as a command', client: 'ssh', command: '/usr/lib/openssh/sftp-server', input: '', expect: 'refused' },
    { name: 'a command on a pty', client: 'ssh', command: 'tty', tty: true, expect: 'ran' },
    // The grammar takes a carriage return for a blank, bash for a letter (`echo a\r#; rm f` hid the rm in a comment): refused.
    { name: 'a carriage return and a tab inside the line', client: 'ssh', command: 'echo a\r\tb', expect: 'refused' },
    { name: 'a line of 30,000 characters', client: 'ssh', command: `: ${'x'.repeat(30_000)}; echo long`, expect: 'ran' },
    // sftp: allowed work in the open directory, each kind of change, an odd file name.
    {
      name: 'sftp: every kind of operation in the open directory', client: 'sftp', expect: 'ran',
      batch: [`put ${local} "${open}/${ODD.replace(/\\/g, '\\\\')}"`, `get "${open}/${ODD.replace(/\\/g, '\\\\')}" ${local}.back`, `mkdir ${open}/sub`,
        `rename "${open}/${ODD.replace(/\\/g, '\\\\')}" ${open}/sub/moved.bin`, `chmod 600 ${open}/sub/moved.bin`, `ln -s ${open}/sub/moved.bin ${open}/link`,
        `ls ${open}`, `rm ${open}/link`, `rm ${open}/sub/moved.bin`, `rmdir ${open}/sub`, `put -p ${local} ${open}/kept.bin`].join('\n'),
    },
    // copy-data (the server copies between two open files) and a hard link.
    { name: 'sftp: cp and a hard link in the open directory', client: 'sftp', batch: [`cp ${open}/kept.bin ${open}/copy.bin`, `ln ${open}/copy.bin ${open}/hard.bin`].join('\n'), expect: 'ran' },
    { name: 'sftp: cp into the locked directory', client: 'sftp', batch: `cp ${open}/kept.bin ${locked}/copy.bin`, expect: 'refused' },
    // sftp: each refused change under the locked directory, and the paths that lead there.
    { name: 'sftp: write under the locked directory', client: 'sftp', batch: `put ${local} ${locked}/evil.bin`, expect: 'refused' },
    { name: 'sftp: remove under the locked directory', client: 'sftp', batch: `rm ${locked}/keep.txt`, expect: 'refused' },
    { name: 'sftp: chmod under the locked directory', client: 'sftp', batch: `chmod 777 ${locked}/keep.txt`, expect: 'refused' },
    { name: 'sftp: rename out of the locked directory', client: 'sftp', batch: `rename ${locked}/keep.txt ${open}/stolen.txt`, expect: 'refused' },
    { name: 'sftp: mkdir under the locked directory', client: 'sftp', batch: `mkdir ${locked}/sub`, expect: 'refused' },
    { name: 'sftp: a symlink made under the locked directory', client: 'sftp', batch: `ln -s /etc/passwd ${locked}/link`, expect: 'refused' },
    { name: 'sftp: a write through ..', client: 'sftp', batch: `put ${local} ${open}/../${locked.split('/').at(-1)}/dots.bin`, expect: 'refused' },
    { name: 'sftp: a write through a symlink to the locked directory', client: 'sftp', batch: `put ${local} ${open}/door/through.bin`, expect: 'refused' },
    { name: 'sftp: reading the locked file is allowed', client: 'sftp', batch: `get ${locked}/keep.txt ${local}.keep`, expect: 'ran' },
    // scp over sftp and over exec (legacy, -O).
    { name: 'scp upload into the open directory', client: 'scp', args: [local, `box@127.0.0.1:${open}/scp.bin`], expect: 'ran' },
    { name: 'scp upload into the locked directory', client: 'scp', args: [local, `box@127.0.0.1:${locked}/scp.bin`], expect: 'refused' },
    { name: 'legacy scp upload into the open directory', client: 'scp', args: ['-O', local, `box@127.0.0.1:${open}/legacy.bin`], expect: 'ran' },
    { name: 'legacy scp download', client: 'scp', args: ['-O', `box@127.0.0.1:${open}/legacy.bin`, `${local}.legacy`], expect: 'ran' },
    { name: 'legacy scp upload into the locked directory', client: 'scp', args: ['-O', local, `box@127.0.0.1:${locked}/legacy.bin`], expect: 'refused' },
    // Bytes sent in a write the target refuses (the file was opened to be read) were not written.
    {
      name: 'sftp: a write through a handle opened for reading', client: 'raw-sftp', expect: 'refused',
      act: async (sftp) => {
        const handle = await call<Buffer>((cb) => sftp.open(`${open}/kept.bin`, 'r', cb));
        const wrote = await call<void>((cb) => sftp.write(handle, Buffer.alloc(5000, 'w'), 0, 5000, 0, cb)).then(() => true, () => false);
        await call<void>((cb) => sftp.close(handle, cb));
        return wrote;
      },
    },
    // A shell: what the target starts for it is Agate's own (the capture), counted as the shell.
    { name: 'a login shell on a pty', client: 'shell', steps: [['[$#] $', 'echo shell-$((6*7)); exit\r']], expect: 'ran' },
  ];
}

const test = suite<Ctx>('ssh oracle: what the target ran is what Agate allowed');

test.before(async (ctx) => {
  try {
    ctx.sshd = await startSshd({ oracle: true });
    ctx.agate = await startAgate({
      ssh: {
        targetsYaml: sshTargetYaml(ctx.sshd),
      },
      policyYaml: `policy:
  default: allow
  rules:
    - { id: no-downloads, action: deny, message: no downloads, match: { protocols: [ssh], shell: { commands: [curl, wget] } } }
    - id: locked-dir
      action: deny
      message: the locked directory is read-only
      match: { protocols: [ssh], ssh: { operations: [write, remove, rename, mkdir, rmdir, setstat, symlink], paths: ['/tmp/agate-oracle-locked-*'] } }
    - { id: typed-lines, action: allow, match: { protocols: [ssh], ssh: { requests: [shell-line] } } }
`,
    });
    ctx.open = await sshdUserDir(ctx.sshd, 'agate-oracle-open-');
    ctx.locked = await sshdUserDir(ctx.sshd, 'agate-oracle-locked-');
    writeFileSync(join(ctx.locked, 'keep.txt'), 'keep me');
    chmodSync(join(ctx.locked, 'keep.txt'), 0o644);
    symlinkSync(ctx.locked, join(ctx.open, 'door'));
    ctx.local = join(ctx.agate.dir, 'payload.bin');
    writeFileSync(ctx.local, Buffer.alloc(100_000, 'oracle\n'));
  } catch (err) {
    console.error('e2e/ssh-oracle setup failed:', err);
    throw err;
  }
});

test.after(async (ctx) => {
  await ctx.agate?.cleanup();
  await ctx.sshd?.stop();
  for (const d of [ctx.open, ctx.locked]) if (d) rmSync(d, { recursive: true, force: true });
});

async function runCase(ctx: Ctx, c: Case): Promise<'ran' | 'refused'> {
  const token = await ctx.agate.oidc.mint({ sub: 'repo:acme/app:ref:refs/heads/main' }, { alg: 'ES256' });
  const env = { ...process.env, SSHPASS: token };
  const port = String(ctx.agate.ssh!.port);
  let code: number | null;
  switch (c.client) {
    case 'ssh':
      code = (await run('sshpass', ['-e', '/usr/bin/ssh', '-p', port, ...SSH_CLIENT_OPTIONS, ...(c.tty ? ['-tt'] : []), 'box@127.0.0.1', c.command], { env, timeoutMs: 30_000, input: c.input })).code;
      break;
    case 'sftp': {
      const file = join(ctx.agate.dir, 'batch');
      writeFileSync(file, `${c.batch}\n`);
      code = (await run('sshpass', ['-e', '/usr/bin/sftp', '-o', 'BatchMode=no', '-b', file, '-P', port, ...SSH_CLIENT_OPTIONS, 'box@127.0.0.1'], { env, timeoutMs: 30_000 })).code;
      break;
    }
    case 'scp':
      code = (await run('sshpass', ['-e', '/usr/bin/scp', '-P', port, ...SSH_CLIENT_OPTIONS, ...c.args], { env, timeoutMs: 30_000 })).code;
      break;
    case 'raw-sftp': {
      const conn = new ssh2.Client();
      try {
        await new Promise<void>((resolve, reject) => {
          conn.once('ready', () => resolve()).once('error', reject);
          conn.connect({ host: '127.0.0.1', port: ctx.agate.ssh!.port, username: 'box', password: token, readyTimeout: 10_000 });
        });
        const sftp = await call<SFTPWrapper>((cb) => conn.sftp(cb));
        code = (await c.act(sftp)) ? 0 : 1;
        sftp.end();
      } finally {
        conn.end();
      }
      break;
    }
    case 'shell': {
      const r = await run('python3', [join(packageRoot(), 'test/harness/pty-drive.py'), JSON.stringify(c.steps), '--', 'sshpass', '-e', '/usr/bin/ssh', '-tt', '-p', port, ...SSH_CLIENT_OPTIONS, 'box@127.0.0.1'], { env, timeoutMs: 60_000 });
      code = r.code === 0 && r.stdout.includes('shell-42') ? 0 : 1;
      break;
    }
  }
  return code === 0 ? 'ran' : 'refused';
}

test('every case behaves as expected for its client', async (ctx) => {
  const wrong: string[] = [];
  for (const c of corpus(ctx)) {
    const outcome = await runCase(ctx, c);
    if (outcome !== c.expect) wrong.push(`${c.name}: ${outcome}, expected ${c.expect}`);
  }
  assert.equal(wrong, []);
  assert.is(readFileSync(join(ctx.locked, 'keep.txt'), 'utf8'), 'keep me');
  assert.is(lstatSync(join(ctx.locked, 'keep.txt')).mode & 0o777, 0o644);
});

test('the target\'s own account: everything it ran was allowed by Agate, nothing Agate refused ran, each file moved the bytes recorded', async (ctx) => {
  // Every recorded Command has its Response: the record of the corpus is complete.
  const events = await waitForEvents(ctx.agate, (evs) => {
    const answered = new Set(evs.filter((e) => e.type === 'Response').map((e) => (e as { command_id: string }).command_id));
    return evs.filter((e): e is Command => e.type === 'Command' && e.protocol === 'ssh').every((c) => answered.has(c.event_id));
  }, 30_000);
  const record = sshdRecord(ctx.sshd.oracleDir!);
  const report = sshOracle(record, events);
  assert.ok(report.checked > 20, `the target noted the corpus (${report.checked} entries)`);
  assert.equal(report.unexplained, [], 'done by the target but not recorded by Agate');
  assert.equal(report.overrun, [], 'done by the target more often than Agate allowed');
  assert.equal(report.bytes, [], 'a file moved other bytes than Agate recorded');
  // Every kind of entry was seen, so none is accounted by accident.
  const texts = record.entries.map((e) => e.text);
  for (const want of ['uname -s', 'tty', 'shell', '(subsystem sftp)', `sftp write ${ctx.open}/${ODD}`, `sftp read ${ctx.open}/${ODD}`, `sftp mkdir ${ctx.open}/sub`,
    `sftp rename ${ctx.open}/${ODD} ${ctx.open}/sub/moved.bin`, `sftp setstat ${ctx.open}/sub/moved.bin`, `sftp symlink ${ctx.open}/link ${ctx.open}/sub/moved.bin`,
    `sftp remove ${ctx.open}/link`, `sftp rmdir ${ctx.open}/sub`, `sftp read ${ctx.locked}/keep.txt`]) {
    assert.ok(texts.includes(want), `the target's account has ${want}`);
  }
  assert.ok(texts.some((t) => t.startsWith(`scp -t `) && t.endsWith(`${ctx.open}/legacy.bin`)), 'legacy scp ran over exec');
  assert.not.ok(texts.some((t) => t.includes(ctx.locked) && !t.startsWith(`sftp read ${ctx.locked}/`)), 'nothing but a read reached the locked directory');
});

test('the oracle itself catches a command, a file operation and bytes Agate did not record as allowed', () => {
  const base = { time: 0, session_id: 's', proxy_id: 'p', sequence: 1, protocol: 'ssh' as const, target: 'box', identity: { issuer: 'i', subject: 's', claims: {} }, parameters: [], attributes: {} };
  const verdict = (command_id: string, decision: 'allow' | 'deny') => ({ type: 'Verdict' as const, event_id: `v${command_id}`, time: 0, session_id: 's', command_id, decision, rule_id: null, reason: '', source: 'policy' as const, policy_revision: '', mask_set: null, approval_id: null, hold_expires_at: null });
  const response = (command_id: string, read: number, written: number) => ({ type: 'Response' as const, event_id: `r${command_id}`, time: 0, session_id: 's', command_id, status: 'ok' as const, command_tag: null, rows: 0, bytes: read + written, duration_us: 0, error_code: null, error_message: null, digest: null, columns: ['bytes_read', 'bytes_written'], sample: [[String(read), String(written)]], masked_values: 0 });
  const events = [
    { ...base, type: 'Command' as const, event_id: 'c1', text: 'uname' }, verdict('c1', 'allow'),
    { ...base, type: 'Command' as const, event_id: 'c2', text: 'curl x' }, verdict('c2', 'deny'),
    { ...base, type: 'Command' as const, event_id: 'c3', text: '(subsystem sftp)' }, verdict('c3', 'allow'),
    { ...base, type: 'Command' as const, event_id: 'c4', text: 'sftp write /o/f' }, verdict('c4', 'allow'), response('c4', 0, 10),
    { ...base, type: 'Command' as const, event_id: 'c5', text: 'sftp remove /l/k' }, verdict('c5', 'deny'),
  ];
  const record: SshdRecord = { entries: [{ text: 'uname', source: 'e1' }, { text: 'curl x', source: 'e2' }, { text: 'rm -rf /', source: 'e3' }], closes: [], unrecorded: [] };
  const log = ['session opened for local user u from [127.0.0.1]', 'open "/o/f" flags WRITE,CREATE,TRUNCATE mode 0644', 'close "/o/f" bytes read 0 written 11',
    'remove name "/l/k"', 'set "/o/f" mode 0600', 'set "/o/f" modtime 20261207-13:00:00', 'opendir "/o"', 'closedir "/o"'].join('\r\n');
  if (sftpLog(log, 'sftp-1', record) > 0) record.entries.push({ text: '(subsystem sftp)', source: 'sftp-1' });
  const report = sshOracle(record, events);
  assert.equal(report.unexplained, ['rm -rf / (e3)', 'sftp setstat /o/f (sftp-1: set "/o/f" mode 0600)']);
  assert.equal(report.overrun, ['curl x ran 1×, allowed 0×', 'sftp remove /l/k ran 1×, allowed 0×']);
  assert.equal(report.bytes, ['/o/f: the target read 0 written 11; Agate read 0 written 10']);
  assert.equal(record.unrecorded, ['sftp-1: opendir "/o"', 'sftp-1: closedir "/o"']);
  // A file a copy-data request wrote into: Agate's count is a floor, never more than the target's.
  const copied = { ...response('c6', 0, 0), command_tag: 'sftp /o/c: 0 bytes written, 0 bytes read, and 1 server-side copy-data request(s) wrote into it' };
  const copyEvents = [{ ...base, type: 'Command' as const, event_id: 'c6', text: 'sftp write /o/c' }, verdict('c6', 'allow'), copied];
  const copyRecord: SshdRecord = { entries: [], closes: [{ text: '/o/c', read: 0, written: 300 }], unrecorded: [] };
  assert.equal(sshOracle(copyRecord, copyEvents).bytes, []);
  copied.sample = [['0', '301']];
  assert.equal(sshOracle(copyRecord, copyEvents).bytes, ['/o/c: the target read 0 written 300; Agate read 0 written 301']);
  // sftp-server's log escapes (vis(3)): a backslash doubled, other bytes in octal.
  assert.is(unvis('/tmp/odd \\303\\251 x\\\\y.txt'), '/tmp/odd é x\\y.txt');
  assert.throws(() => sftpLog('a line nobody knows', 'sftp-2', record), /cannot read/);
});

test.run();
