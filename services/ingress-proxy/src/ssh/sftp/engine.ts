import { ErrorCode, ProtocolError } from '../../../../../core/src/errors.js';
import { PacketFramer, type Frame } from './framer.js';
import type { FileResult, SftpHooks } from './hooks.js';
import { OPEN_WRITE_FLAGS, PacketType, StatusCode, type SftpReply, type SftpRequest } from './messages.js';
import { account, begin, carry, failedWrite, fileResult, openFile, type OpenFile, type StreamedData } from './open-file.js';
import { Outbox } from './outbox.js';
import { parseDataHead, parseReply, parseRequest, parseWriteHead } from './parser.js';
import { statusPacket } from './serializer.js';

/** Requests awaiting a reply, per kind; more than this is a client flooding the proxy. */
const MAX_OUTSTANDING = 65_536;
const MAX_OPEN_FILES = 1024;

/** Where the engine's bytes go; the socket adapter (relay.ts) supplies these. */
interface EngineIo {
  /** Client requests (and upload data) for the target, in order. */
  toTarget(bytes: Buffer): void;
  /** Replies for the client; false when its buffer is full and the target should wait for it. */
  toClient(bytes: Buffer): boolean;
  /** A decision is pending: read nothing more from the client until the matching `release`. */
  hold(): void;
  release(): void;
}

/**
 * Requests the target has not answered yet, by request id, one table per kind of request that is
 * accounted. A read or close holds the file its handle named when it was sent: the target may
 * hand the same handle to a later open before it answers.
 */
interface Awaiting<T> {
  open: Map<number, { token: T; path: string }>;
  read: Map<number, { file: OpenFile<T>; offset: number }>;
  /** A write counts as written once the target says so; a failed one is taken back. */
  write: Map<number, { file: OpenFile<T>; length: number }>;
  close: Map<number, OpenFile<T>>;
  change: Map<number, T>;
}
type AwaitingKind = keyof Awaiting<unknown>;
/** What is kept of an awaiting request of kind K until its reply. */
type AwaitingValue<T, K extends AwaitingKind> = Awaiting<T>[K] extends Map<number, infer V> ? V : never;
/** The tables a reply's id is looked up in (an id awaits in one table at most: see `outstanding`). */
const ANSWER_ORDER: readonly AwaitingKind[] = ['open', 'read', 'write', 'close', 'change'];

/** What a request handler says: forward it (true), it was refused (false), or wait for the decision. */
type Verdict = boolean | Promise<boolean>;
type RequestHandlers = { [K in SftpRequest['kind']]: (req: Extract<SftpRequest, { kind: K }>) => Verdict };
type ReplyHandlers<T> = { [K in AwaitingKind]: (request: AwaitingValue<T, K>, reply: SftpReply) => void };

/** Everything the engine knows between packets. */
interface SftpState<T> {
  awaiting: Awaiting<T>;
  /**
   * Every request id sent to the target and not answered yet, of any kind. The target answers
   * by id alone, so an id reused while outstanding would let its first answer be taken for the
   * second request (a handle paired with another path): such a request ends the channel.
   */
  outstanding: Set<number>;
  /** Files the target opened and the client has not asked to close, by handle (hex). */
  files: Map<string, OpenFile<T>>;
  /** The streamed write (client side) and data reply (target side) in progress: whose data the next bytes are. */
  upData: StreamedData<T> | undefined;
  downData: StreamedData<T> | undefined;
  /** Agate's own replies wait here while a streamed reply is half sent, so none is spliced into it. */
  heldReplies: Buffer[];
  /** Set once the channel is ending: nothing more is forwarded. */
  stopped: boolean;
  bytesUp: number;
  bytesDown: number;
}

/**
 * The SFTP relay with no sockets: client bytes in through `fromClient`, target bytes through
 * `fromTarget`, out through `EngineIo`. Requests that change files are decided (through `hooks`)
 * before they are forwarded; reads and writes are accounted to their open file, whose bytes and
 * digest are recorded when it closes. Requests and replies go to a handler per kind, keyed by the
 * kind the parser gives each packet type; anything unknown is relayed unrecorded (metadata reads,
 * extensions that change nothing Agate decides), and a packet that does not parse is a
 * `ProtocolError` thrown to the caller, which closes the channel.
 */
export class SftpEngine<T> {
  readonly state: SftpState<T> = {
    awaiting: { open: new Map(), read: new Map(), write: new Map(), close: new Map(), change: new Map() },
    outstanding: new Set(),
    files: new Map(),
    upData: undefined,
    downData: undefined,
    heldReplies: [],
    stopped: false,
    bytesUp: 0,
    bytesDown: 0,
  };
  readonly #up = new PacketFramer({ streamed: [PacketType.Write] });
  readonly #down = new PacketFramer({ streamed: [PacketType.Data] });
  readonly #upOut: Outbox;
  readonly #downOut: Outbox;
  /** Set when a write to the client returned false during the current target chunk. */
  #clientFull = false;

  constructor(
    private readonly hooks: SftpHooks<T>,
    private readonly io: EngineIo,
  ) {
    this.#upOut = new Outbox((bytes) => io.toTarget(bytes));
    this.#downOut = new Outbox((bytes) => {
      this.#clientFull = !io.toClient(bytes) || this.#clientFull;
    });
  }

  /**
   * Client → target. Returns a promise while a decision holds the rest of the chunk (the client is
   * held meanwhile); it rejects, as this throws, on a packet that breaks the protocol.
   */
  fromClient(chunk: Buffer): Promise<void> | undefined {
    this.state.bytesUp += chunk.length;
    return this.#forward(this.#up.push(chunk), 0);
  }

  /** Target → client: whole packets or streamed data replies. Returns false when the client fell behind. */
  fromTarget(chunk: Buffer): boolean {
    for (const f of this.#down.push(chunk)) this.#targetFrame(f);
    this.#downOut.flush();
    const kept = !this.#clientFull;
    this.#clientFull = false;
    return kept;
  }

  /** The channel is ending: forward nothing more, and record the files still open with what moved so far. */
  stop(): void {
    this.state.stopped = true;
    const { awaiting } = this.state;
    const open = [...this.state.files.values(), ...awaiting.close.values()];
    for (const file of open) this.hooks.finished(file.token, fileResult(file, false, 'the channel closed before the file was closed'));
    // Allowed, perhaps forwarded, never answered: each decided request still gets its record.
    const unanswered = [...[...awaiting.open.values()].map((o) => o.token), ...awaiting.change.values()];
    for (const token of unanswered) this.hooks.finished(token, { ok: false, message: 'the channel closed before the target answered', bytesRead: 0, bytesWritten: 0, digest: null, summary: 'unanswered' });
    this.state.files.clear();
    awaiting.close.clear();
    awaiting.open.clear();
    awaiting.change.clear();
    awaiting.write.clear();
  }

  /** Forwards frames[from..] in order; returns a promise when a decision made it wait. */
  #forward(frames: Frame[], from: number): Promise<void> | undefined {
    for (let i = from; i < frames.length; i += 1) {
      if (this.state.stopped) return undefined;
      const f = frames[i]!;
      if (f.kind === 'head') this.#writeHead(f.head, f.length);
      else if (f.kind === 'rest') this.#writeRest(f.bytes, f.last);
      else {
        const verdict = this.#request(parseRequest(f.packet.subarray(4)));
        if (verdict === true) this.#upOut.add(f.packet);
        else if (verdict !== false) return this.#await(verdict, f.packet, frames, i);
      }
    }
    this.#upOut.flush();
    return undefined;
  }

  /** `packet` (frames[i]) waits for its decision; what follows it in the chunk waits too. */
  #await(verdict: Promise<boolean>, packet: Buffer, frames: Frame[], i: number): Promise<void> {
    this.#upOut.flush();
    this.io.hold();
    return verdict.then((forward) => {
      if (forward && !this.state.stopped) this.#upOut.add(packet);
      const next = this.#forward(frames, i + 1);
      this.io.release();
      return next;
    });
  }

  // SSH_FXP_WRITE, streamed: uint32 length | byte 6 | uint32 id | string handle | uint64 offset | uint32 n | data…
  #writeHead(head: Buffer, length: number): void {
    const h = parseWriteHead(head.subarray(4), length - 4);
    this.#sent(h.id);
    const file = this.#file(h.handle, 'write');
    begin(file, h.offset, h.dataLength);
    this.#expect('write', h.id, { file, length: h.dataLength });
    this.state.upData = { file, left: h.dataLength };
    carry(this.state.upData, h.data, 'write');
    this.#upOut.add(head);
  }

  #writeRest(bytes: Buffer, last: boolean): void {
    carry(this.state.upData!, bytes, 'write');
    if (last) this.state.upData = undefined;
    this.#upOut.add(bytes);
  }

  #request(req: SftpRequest): Verdict {
    if (req.kind !== 'init') this.#sent(req.id);
    return (this.#requests[req.kind] as (r: SftpRequest) => Verdict)(req);
  }

  /** Notes a request id as awaiting its answer; one still awaiting, or a flood of them, ends the channel. */
  #sent(id: number): void {
    const { outstanding } = this.state;
    if (outstanding.has(id)) throw new ProtocolError(`sftp: request id ${id} is still awaiting its reply, so a second request cannot use it`, ErrorCode.PROTOCOL_VIOLATION);
    if (outstanding.size >= MAX_OUTSTANDING) throw new ProtocolError(`more than ${MAX_OUTSTANDING} sftp requests outstanding`, ErrorCode.PROTOCOL_VIOLATION);
    outstanding.add(id);
  }

  /**
   * The open file a read, write or fsetstat names. A handle this channel's opens did not return,
   * or one the client already asked to close (the target may give it to the next open), names
   * no file Agate decided: the channel ends rather than act on a file nobody decided.
   */
  #file(handle: string, request: string): OpenFile<T> {
    const file = this.state.files.get(handle);
    if (file === undefined) throw new ProtocolError(`sftp: a ${request} names a handle that no open of this channel returned, or that was closed`, ErrorCode.PROTOCOL_VIOLATION);
    return file;
  }

  /** One handler per request kind (parser.ts maps each packet type to its kind). */
  readonly #requests: RequestHandlers = {
    init: () => true,
    // byte 3 | uint32 id | string path | uint32 pflags | ATTRS: a write if any write flag is set.
    open: (req) => {
      const operation = (req.flags & OPEN_WRITE_FLAGS) !== 0 ? 'write' : 'read';
      return this.#decide(req.id, { operation, path: req.path, request: 'open' }, (token) => this.#expect('open', req.id, { token, path: req.path }));
    },
    // remove, rename, mkdir, rmdir, setstat, symlink and the OpenSSH extensions that do the same.
    change: (req) => this.#decide(req.id, { operation: req.operation, path: req.path, targetPath: req.targetPath, request: req.name }, (token) => this.#expect('change', req.id, token)),
    // byte 10 | uint32 id | string handle | ATTRS: decided as a setstat of the file the handle opened.
    fsetstat: (req) => {
      const { path } = this.#file(req.handle, 'fsetstat');
      return this.#decide(req.id, { operation: 'setstat', path, request: 'fsetstat' }, (token) => this.#expect('change', req.id, token));
    },
    // byte 200 | uint32 id | "copy-data" | string from | uint64 | uint64 | string to | uint64: both files'
    // opens were decided (read, write); the record of each says the target copied bytes it never showed.
    copy: (req) => {
      this.#file(req.from, 'copy-data').copiedFrom += 1;
      this.#file(req.to, 'copy-data').copiedInto += 1;
      return true;
    },
    // byte 5 | uint32 id | string handle | uint64 offset | uint32 len: accounted when the data comes back.
    read: (req) => {
      this.#expect('read', req.id, { file: this.#file(req.handle, 'read'), offset: req.offset });
      return true;
    },
    // byte 6 | uint32 id | string handle | uint64 offset | string data (a small write, whole).
    write: (req) => {
      const file = this.#file(req.handle, 'write');
      account(file, req.offset, req.data, 'write');
      this.#expect('write', req.id, { file, length: req.data.length });
      return true;
    },
    // byte 4 | uint32 id | string handle: the handle names no file from now on (the target may
    // reuse it); the file's record is written when the target answers. A handle Agate does not
    // know is a directory's (opendir is not accounted).
    close: (req) => {
      const file = this.state.files.get(req.handle);
      if (file === undefined) return true;
      this.state.files.delete(req.handle);
      this.#expect('close', req.id, file);
      return true;
    },
    // stat, readdir, realpath, unknown types and extensions: the target answers them itself.
    other: () => true,
  };

  /** Asks policy; on allow, `allowed` notes the request as awaiting its reply. */
  #decide(id: number, request: Parameters<SftpHooks<T>['decide']>[0], allowed: (token: T) => void): Promise<boolean> {
    return this.hooks.decide(request).then((d) => {
      if (d.refusal !== undefined) return this.#refuse(id, d.token, d.refusal);
      allowed(d.token);
      return true;
    });
  }

  #expect<K extends AwaitingKind>(kind: K, id: number, value: AwaitingValue<T, K>): void {
    (this.state.awaiting[kind] as Map<number, unknown>).set(id, value); // bounded by `outstanding`
  }

  /** Answers a refused request with SSH_FX_PERMISSION_DENIED and Agate's reason, between the target's packets. */
  #refuse(id: number, token: T, reason: string): false {
    this.state.outstanding.delete(id); // answered here: the target never sees it
    const status = statusPacket(id, StatusCode.PermissionDenied, reason);
    if (this.state.downData === undefined) this.io.toClient(status);
    else this.state.heldReplies.push(status);
    this.hooks.finished(token, { ok: false, refused: true, message: reason, bytesRead: 0, bytesWritten: 0, digest: null, summary: 'refused' });
    return false;
  }

  #targetFrame(f: Frame): void {
    if (f.kind === 'head') {
      // SSH_FXP_DATA, streamed: uint32 length | byte 103 | uint32 id | uint32 n | data…
      const h = parseDataHead(f.head.subarray(4), f.length - 4);
      this.state.outstanding.delete(h.id);
      this.state.downData = { file: this.#dataFile(h.id, h.dataLength), left: h.dataLength };
      carry(this.state.downData, h.data, 'read');
      this.#toClient(f.head);
    } else if (f.kind === 'rest') {
      carry(this.state.downData!, f.bytes, 'read');
      this.#toClient(f.bytes);
      if (f.last) {
        this.state.downData = undefined;
        for (const held of this.state.heldReplies) this.#downOut.add(held);
        this.state.heldReplies = [];
      }
    } else {
      this.#reply(parseReply(f.packet.subarray(4)));
      this.#toClient(f.packet);
    }
  }

  #toClient(bytes: Buffer): void {
    this.state.bytesDown += bytes.length;
    this.#downOut.add(bytes);
  }

  /** A streamed data reply starts: the file of the read it answers, its transfer begun. */
  #dataFile(id: number, length: number): OpenFile<T> | undefined {
    const read = this.#take('read', id);
    if (read === undefined) return undefined;
    begin(read.file, read.offset, length);
    return read.file;
  }

  #take<K extends AwaitingKind>(kind: K, id: number): AwaitingValue<T, K> | undefined {
    const map = this.state.awaiting[kind] as Map<number, AwaitingValue<T, K>>;
    const value = map.get(id);
    if (value !== undefined) map.delete(id);
    return value;
  }

  #reply(r: SftpReply): void {
    if (r.kind === 'version') return;
    this.state.outstanding.delete(r.id);
    for (const kind of ANSWER_ORDER) {
      const request = this.#take(kind, r.id);
      if (request === undefined) continue;
      (this.#replies[kind] as (request: unknown, reply: SftpReply) => void)(request, r);
      return;
    }
  }

  /** One handler per kind of request a reply can answer. */
  readonly #replies: ReplyHandlers<T> = {
    // SSH_FXP_HANDLE opens the file's record; a status is a failed open, recorded now.
    open: (open, r) => {
      if (r.kind === 'handle') {
        if (this.state.files.size >= MAX_OPEN_FILES) throw new ProtocolError(`more than ${MAX_OPEN_FILES} files open at once`, ErrorCode.PROTOCOL_VIOLATION);
        this.state.files.set(r.handle, openFile(open.token, open.path));
        return;
      }
      this.hooks.finished(open.token, { ok: false, message: statusMessage(r), bytesRead: 0, bytesWritten: 0, digest: null, summary: 'open failed' });
    },
    // SSH_FXP_DATA, whole: counted against the file the read named (EOF and errors move nothing).
    read: (read, r) => {
      if (r.kind === 'data') account(read.file, read.offset, r.data, 'read');
    },
    // SSH_FXP_STATUS for a write: a failed one wrote nothing the file's record may count.
    write: (write, r) => {
      if (!isOk(r)) failedWrite(write.file, write.length);
    },
    // The file's record: what moved through the handle, and whether the close succeeded.
    close: (file, r) => {
      const ok = isOk(r);
      this.hooks.finished(file.token, fileResult(file, ok, ok ? null : r.kind === 'status' ? r.message : 'unexpected reply'));
    },
    change: (token, r) => {
      const ok = isOk(r);
      const message = statusMessage(r);
      this.hooks.finished(token, changeResult(ok, message));
    },
  };
}

function isOk(r: SftpReply): boolean {
  return r.kind === 'status' && r.code === StatusCode.Ok;
}

function statusMessage(r: SftpReply): string {
  return r.kind === 'status' ? r.message || `status ${r.code}` : 'unexpected reply';
}

function changeResult(ok: boolean, message: string): FileResult {
  return { ok, message: ok ? null : message, bytesRead: 0, bytesWritten: 0, digest: null, summary: ok ? 'ok' : message };
}
