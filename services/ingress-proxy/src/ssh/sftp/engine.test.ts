import { suite } from '../../../../../test/harness/suite.js';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { AgateError, ErrorCode } from '../../../../../core/src/errors.js';
import { SftpEngine } from './engine.js';
import type { FileRequest, FileResult } from './hooks.js';
import { parseReply } from './parser.js';

const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
};
const u64 = (v: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(v));
  return b;
};
const str = (s: string | Buffer) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
const frame = (type: number, ...parts: Buffer[]) => {
  const body = Buffer.concat([Buffer.from([type]), ...parts]);
  return Buffer.concat([u32(body.length), body]);
};
// Client requests.
const init = () => frame(1, u32(3));
const open = (id: number, path: string, flags: number) => frame(3, u32(id), str(path), u32(flags), u32(0));
const close = (id: number, h = 'h1') => frame(4, u32(id), str(h));
const read = (id: number, offset: number, length: number, h = 'h1') => frame(5, u32(id), str(h), u64(offset), u32(length));
const write = (id: number, offset: number, data: string, h = 'h1') => frame(6, u32(id), str(h), u64(offset), str(data));
const fsetstat = (id: number, h: string) => frame(10, u32(id), str(h), u32(0));
const onePath = (type: number) => (id: number, path: string) => frame(type, u32(id), str(path), u32(0));
const twoPaths = (type: number) => (id: number, a: string, b: string) => frame(type, u32(id), str(a), str(b));
const stat = (id: number, path: string) => frame(17, u32(id), str(path));
const extended = (id: number, name: string, ...paths: string[]) => frame(200, u32(id), str(name), ...paths.map((p) => str(p)));
// Target replies.
const version = () => frame(2, u32(3));
const status = (id: number, code: number, message = '') => frame(101, u32(id), u32(code), str(message), str(''));
const handle = (id: number, h = 'h1') => frame(102, u32(id), str(h));
const data = (id: number, bytes: string) => frame(103, u32(id), str(bytes));
const attrs = (id: number) => frame(105, u32(id), u32(0));
const sha256 = (s: string) => 'sha256:' + createHash('sha256').update(s).digest('hex');

/** An engine with recording hooks; `refuse` names paths policy refuses. */
function setup(refuse: (r: FileRequest) => string | undefined = () => undefined) {
  const toTarget: Buffer[] = [];
  const toClient: Buffer[] = [];
  const decided: FileRequest[] = [];
  const finished: { request: FileRequest; result: FileResult }[] = [];
  let holds = 0;
  const engine = new SftpEngine<FileRequest>(
    {
      decide: async (r) => {
        decided.push(r);
        const refusal = refuse(r);
        return refusal === undefined ? { token: r } : { token: r, refusal };
      },
      finished: (request, result) => void finished.push({ request, result }),
    },
    {
      toTarget: (b) => void toTarget.push(b),
      toClient: (b) => (toClient.push(b), true),
      hold: () => void (holds += 1),
      release: () => void (holds -= 1),
    },
  );
  return {
    engine,
    decided,
    finished,
    target: () => Buffer.concat(toTarget),
    client: () => Buffer.concat(toClient),
    holds: () => holds,
    /** Sends client bytes and waits for any decision they wait on. */
    send: async (...packets: Buffer[]) => void (await engine.fromClient(Buffer.concat(packets))),
    reply: (...packets: Buffer[]) => engine.fromTarget(Buffer.concat(packets)),
  };
}

/** An engine with `/f` open as handle h1 (for reading, or for writing with `flags`). */
async function withOpenFile(flags = 0x01) {
  const s = setup();
  await s.send(open(1, '/f', flags));
  s.reply(handle(1));
  return s;
}

const requests = suite('sftp/engine requests');

requests('init and version pass through unrecorded', async () => {
  const s = setup();
  await s.send(init());
  s.reply(version());
  assert.ok(s.target().equals(init()));
  assert.ok(s.client().equals(version()));
  assert.equal([s.decided.length, s.finished.length], [0, 0]);
});

requests('open: decided as a read or a write by its flags, then forwarded', async () => {
  const s = setup();
  await s.send(open(1, '/r', 0x01), open(2, '/w', 0x01 | 0x08), open(3, '/a', 0x04), open(4, '/t', 0x10));
  assert.equal(
    s.decided.map((d) => [d.operation, d.path, d.request]),
    [['read', '/r', 'open'], ['write', '/w', 'open'], ['write', '/a', 'open'], ['write', '/t', 'open']],
  );
  assert.ok(s.target().equals(Buffer.concat([open(1, '/r', 0x01), open(2, '/w', 0x09), open(3, '/a', 0x04), open(4, '/t', 0x10)])));
  assert.is(s.holds(), 0, 'every hold was released');
});

requests('open refused: PERMISSION_DENIED with the reason, recorded as refused, never forwarded', async () => {
  const s = setup((r) => (r.path === '/etc/shadow' ? 'Agate refused: secrets' : undefined));
  await s.send(open(1, '/etc/shadow', 0x01), stat(2, '/'));
  assert.equal(parseReply(s.client().subarray(4)), { kind: 'status', id: 1, code: 3, message: 'Agate refused: secrets' });
  assert.ok(s.target().equals(stat(2, '/')), 'what followed the refused open went on');
  assert.equal(s.finished[0]!.result, { ok: false, refused: true, message: 'Agate refused: secrets', bytesRead: 0, bytesWritten: 0, digest: null, summary: 'refused' });
});

requests('open failed at the target: recorded with its status message', async () => {
  const s = setup();
  await s.send(open(1, '/nope', 0x01), open(2, '/odd', 0x01));
  s.reply(status(1, 2, 'No such file'), status(2, 4));
  assert.equal(s.finished.map((f) => [f.request.path, f.result.ok, f.result.message, f.result.summary]), [
    ['/nope', false, 'No such file', 'open failed'],
    ['/odd', false, 'status 4', 'open failed'],
  ]);
  assert.is(s.engine.state.files.size, 0);
});

requests('changes: each request type and extension is decided with its operation and paths', async () => {
  const s = setup();
  await s.send(
    onePath(13)(1, '/rm'),
    onePath(14)(2, '/mk'),
    onePath(15)(3, '/rd'),
    onePath(9)(4, '/ss'),
    twoPaths(18)(5, '/old', '/new'),
    twoPaths(20)(6, '/target', '/link'),
    extended(7, 'posix-rename@openssh.com', '/a', '/b'),
    extended(8, 'hardlink@openssh.com', '/c', '/d'),
    extended(9, 'lsetstat@openssh.com', '/e'),
  );
  assert.equal(
    s.decided.map((d) => [d.operation, d.path, d.targetPath, d.request]),
    [
      ['remove', '/rm', undefined, 'remove'],
      ['mkdir', '/mk', undefined, 'mkdir'],
      ['rmdir', '/rd', undefined, 'rmdir'],
      ['setstat', '/ss', undefined, 'setstat'],
      ['rename', '/old', '/new', 'rename'],
      ['symlink', '/link', '/target', 'symlink'],
      ['rename', '/a', '/b', 'posix-rename@openssh.com'],
      ['symlink', '/c', '/d', 'hardlink@openssh.com'],
      ['setstat', '/e', undefined, 'lsetstat@openssh.com'],
    ],
  );
  s.reply(status(1, 0), status(2, 4, 'Failure'), status(3, 4));
  assert.equal(s.finished.map((f) => [f.request.path, f.result.ok, f.result.message, f.result.summary]), [
    ['/rm', true, null, 'ok'],
    ['/mk', false, 'Failure', 'Failure'],
    ['/rd', false, 'status 4', 'status 4'],
  ]);
});

requests('fsetstat: decided as a setstat of the file its handle opened', async () => {
  const s = await withOpenFile();
  await s.send(fsetstat(2, 'h1'));
  assert.equal(s.decided.slice(1).map((d) => [d.operation, d.path, d.request]), [['setstat', '/f', 'fsetstat']]);
  s.reply(status(2, 0));
  assert.equal([s.finished[0]!.request.request, s.finished[0]!.result.ok], ['fsetstat', true]);
});

requests('read and write: counted against their file, recorded with the digest at close', async () => {
  const s = await withOpenFile(0x02);
  await s.send(write(2, 0, 'hello '), write(3, 6, 'world'), read(4, 11, 5), read(5, 16, 10));
  s.reply(status(2, 0), status(3, 0), data(4, 'again'), status(5, 1, 'EOF'));
  assert.is(s.finished.length, 0, 'nothing is recorded before the close');
  await s.send(close(6));
  s.reply(status(6, 0));
  assert.equal(s.finished[0]!.result, {
    ok: true,
    message: null,
    bytesRead: 5,
    bytesWritten: 11,
    digest: sha256('hello worldagain'),
    summary: 'sftp /f: 11 bytes written, 5 bytes read',
  });
});

requests('a write the target fails (a handle opened to read): its bytes are not counted as written, and the record says so', async () => {
  const s = await withOpenFile(0x01);
  await s.send(write(2, 0, 'hello '), write(3, 6, 'world'));
  s.reply(status(2, 0), status(3, 4, 'Bad file descriptor'));
  await s.send(close(4));
  s.reply(status(4, 0));
  const r = s.finished[0]!.result;
  assert.equal([r.ok, r.bytesWritten, r.digest], [true, 6, null]);
  assert.is(r.summary, 'sftp /f: 6 bytes written, 0 bytes read, and 1 write(s) the target failed (5 bytes, not counted: no digest)');
});

requests('close failed at the target: the file is recorded as not ok with its message', async () => {
  const s = await withOpenFile();
  await s.send(close(2));
  s.reply(status(2, 4, 'disk full'));
  assert.equal([s.finished[0]!.result.ok, s.finished[0]!.result.message, s.finished[0]!.result.digest], [false, 'disk full', null]);
});

requests('metadata requests (stat) are forwarded undecided and their replies relayed unrecorded', async () => {
  const s = await withOpenFile();
  await s.send(stat(2, '/f'));
  s.reply(attrs(2));
  assert.is(s.decided.length, 1, 'only the open was decided');
  assert.ok(s.target().subarray(-stat(2, '/f').length).equals(stat(2, '/f')));
  assert.ok(s.client().subarray(-attrs(2).length).equals(attrs(2)));
  assert.is(s.finished.length, 0);
});

requests('stop(): files still open are recorded with what moved so far', async () => {
  const s = await withOpenFile(0x02);
  await s.send(write(2, 0, 'part'));
  s.engine.stop();
  assert.equal([s.finished[0]!.result.ok, s.finished[0]!.result.bytesWritten, s.finished[0]!.result.message], [false, 4, 'the channel closed before the file was closed']);
  await s.send(stat(3, '/'));
  assert.not.ok(s.target().includes(stat(3, '/')), 'nothing is forwarded after stop');
});

requests('stop(): a decided request the target never answered is recorded as unanswered', async () => {
  const s = await withOpenFile();
  await s.send(open(2, '/g', 0x01), onePath(13)(3, '/r'));
  s.engine.stop();
  assert.equal(s.finished.map((f) => [f.request.path, f.result.ok, f.result.message]), [
    ['/f', false, 'the channel closed before the file was closed'],
    ['/g', false, 'the channel closed before the target answered'],
    ['/r', false, 'the channel closed before the target answered'],
  ]);
});

requests.run();

const order = suite('sftp/engine out-of-order replies');

order('replies answered in any order reach the request they answer', async () => {
  const s = setup();
  await s.send(open(1, '/a', 0x01), open(2, '/b', 0x02), onePath(13)(3, '/c'));
  s.reply(status(3, 0), handle(2, 'hb'), handle(1, 'ha'));
  assert.equal([...s.engine.state.files.entries()].map(([h, f]) => [Buffer.from(h, 'hex').toString(), f.path]), [
    ['hb', '/b'],
    ['ha', '/a'],
  ]);
  assert.equal([s.finished[0]!.request.path, s.finished[0]!.result.ok], ['/c', true]);
  await s.send(close(4, 'ha'), close(5, 'hb'));
  s.reply(status(5, 0), status(4, 0));
  assert.equal(s.finished.slice(1).map((f) => f.request.path), ['/b', '/a']);
});

order('data replies out of file order: bytes counted, digest withheld', async () => {
  const s = await withOpenFile();
  await s.send(read(2, 0, 3), read(3, 3, 3));
  s.reply(data(3, 'def'), data(2, 'abc'));
  await s.send(close(4));
  s.reply(status(4, 0));
  const r = s.finished[0]!.result;
  assert.equal([r.bytesRead, r.digest, r.summary], [6, null, 'sftp /f: 0 bytes written, 6 bytes read (out of order: no digest)']);
});

order('a reply whose id nobody awaits is relayed and changes nothing', async () => {
  const s = await withOpenFile();
  s.reply(status(77, 0), data(78, 'x'));
  assert.equal([s.finished.length, s.engine.state.files.size], [0, 1]);
  assert.ok(s.client().subarray(-data(78, 'x').length).equals(data(78, 'x')));
});

order.run();

const failing = suite('sftp/engine fail-closed');

failing('an unknown request type is forwarded undecided, unrecorded; the target answers it', async () => {
  const s = setup();
  const unknown = frame(99, u32(5), str('whatever'));
  const unsupported = status(5, 8, 'Operation unsupported');
  await s.send(unknown);
  s.reply(unsupported);
  assert.ok(s.target().equals(unknown));
  assert.ok(s.client().equals(unsupported));
  assert.equal([s.decided.length, s.finished.length], [0, 0]);
});

failing('an unknown extension is forwarded undecided', async () => {
  const s = setup();
  const ext = extended(1, 'limits@openssh.com');
  await s.send(ext);
  assert.ok(s.target().equals(ext));
  assert.is(s.decided.length, 0);
});

failing('a packet cut short is a PROTOCOL_VIOLATION and nothing of it is forwarded', async () => {
  const s = setup();
  const short = frame(3, u32(1), u32(100)); // an open whose path length runs past the packet
  try {
    await s.send(short);
    assert.unreachable('should throw');
  } catch (err) {
    assert.instance(err, AgateError);
    assert.is((err as AgateError).code, ErrorCode.PROTOCOL_VIOLATION);
  }
  assert.is(s.target().length, 0);
  assert.is(s.decided.length, 0);
});

const violation = (err: unknown) => err instanceof AgateError && err.code === ErrorCode.PROTOCOL_VIOLATION;

/** Fails unless `work` rejects with an error `expected` accepts (a synchronous throw counts). */
async function rejects(work: () => Promise<unknown>, expected: (err: unknown) => boolean): Promise<void> {
  try {
    await work();
  } catch (err) {
    assert.ok(expected(err), `rejected with something else: ${String(err)}`);
    return;
  }
  assert.unreachable('should have rejected');
}

failing('a request id still awaiting its reply cannot be reused, whatever the kinds: nothing of the second is forwarded', async () => {
  for (const second of [open(7, '/other', 0x01), stat(7, '/'), read(7, 0, 1), onePath(13)(7, '/x')]) {
    const s = await withOpenFile();
    await s.send(open(7, '/locked/key', 0x01));
    const sent = s.target().length;
    await rejects(async () => s.send(second), violation);
    assert.is(s.target().length, sent);
  }
  // Once answered, the id is free again.
  const s = await withOpenFile();
  await s.send(stat(7, '/'));
  s.reply(attrs(7));
  await s.send(stat(7, '/'));
});

failing('a handle the client asked to close names no file, even when the target hands it to the next open', async () => {
  for (const after of [fsetstat(4, 'h1'), write(4, 0, 'x'), read(4, 0, 1)]) {
    const s = await withOpenFile();
    await s.send(close(2), open(3, '/locked/key', 0x01));
    await rejects(async () => s.send(after), violation);
    assert.is(s.decided.filter((d) => d.operation === 'setstat').length, 0, 'no setstat was decided on the closed file');
    s.reply(status(2, 0), handle(3, 'h1'));
    assert.equal(s.finished.map((f) => [f.request.path, f.result.ok]), [['/f', true]], 'the close is recorded against the file it closed');
  }
  // A handle no open returned (a directory's, or made up) cannot be setstat, read or written.
  const s = setup();
  await rejects(async () => s.send(fsetstat(1, 'nobody')), violation);
});

failing('copy-data: the files written and read are recorded with no digest and say the target copied between them', async () => {
  const s = setup();
  await s.send(open(1, '/src', 0x01), open(2, '/dst', 0x02 | 0x08));
  s.reply(handle(1, 'hs'), handle(2, 'hd'));
  await s.send(frame(200, u32(3), str('copy-data'), str('hs'), u64(0), u64(0), str('hd'), u64(0)));
  s.reply(status(3, 0));
  await s.send(close(4, 'hd'));
  s.reply(status(4, 0));
  const r = s.finished.find((f) => f.request.path === '/dst')!.result;
  assert.equal([r.ok, r.digest], [true, null]);
  assert.match(r.summary, /1 server-side copy-data request\(s\) wrote into it/);
  // The file read is the copy's source: its record must not say that nothing was read from it.
  await s.send(close(6, 'hs'));
  s.reply(status(6, 0));
  const from = s.finished.find((f) => f.request.path === '/src')!.result;
  assert.equal([from.ok, from.digest], [true, null]);
  assert.match(from.summary, /1 server-side copy-data request\(s\) read from it \(bytes not seen by Agate: no digest\)/);
  await rejects(async () => s.send(frame(200, u32(5), str('copy-data'), str('hs'), u64(0), u64(0), str('nobody'), u64(0))), violation);
});

failing('a flood of outstanding requests is refused with PROTOCOL_VIOLATION', async () => {
  const s = await withOpenFile();
  const reads = Buffer.concat(Array.from({ length: 65_537 }, (_, i) => read(i + 2, 0, 1)));
  assert.throws(() => s.engine.fromClient(reads), (err: unknown) => err instanceof AgateError && err.code === ErrorCode.PROTOCOL_VIOLATION);
});

failing.run();
