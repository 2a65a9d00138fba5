import { createHash, type Hash } from 'node:crypto';
import type { ClientChannel, ServerChannel } from 'ssh2';
import { ClientWrites } from '../client-writes.js';
import { AgateError, ErrorCode, ProtocolError } from '../../../../../core/src/errors.js';
import type { ExecOutcome } from '../exec-relay.js';
import { PacketFramer, type Frame } from './framer.js';
import { Outbox } from './outbox.js';
import { OPEN_WRITE_FLAGS, PacketType, StatusCode, type DataHead, type FileOperation, type SftpReply, type SftpRequest } from './messages.js';
import { parseDataHead, parseReply, parseRequest, parseWriteHead } from './parser.js';
import { statusPacket } from './serializer.js';

/** One file operation the client asked for, as policy sees it. */
export interface FileRequest {
  operation: FileOperation;
  path: string;
  targetPath?: string;
  /** The SFTP request's name (`open`, `posix-rename@openssh.com`, …). */
  request: string;
}

/** How a recorded operation ended: for a file, once it is closed. */
export interface FileResult {
  ok: boolean;
  /** Refused by Agate before it reached the target. */
  refused?: boolean;
  /** The server's status message on failure. */
  message: string | null;
  bytesRead: number;
  bytesWritten: number;
  /** `sha256:<hex>` over the file data moved, in file order; null when none moved or it moved out of order. */
  digest: string | null;
  summary: string;
}

export interface SftpHooks<T> {
  /** Records and decides one operation; `refusal` set means it must not reach the target. */
  decide(request: FileRequest): Promise<{ token: T; refusal?: string }>;
  /** Records how an allowed operation ended. */
  finished(token: T, result: FileResult): void;
}

export interface SftpOutcome extends ExecOutcome {
  /** Set when the client broke the protocol; the channel was closed. */
  error?: AgateError;
}

/** Requests awaiting a reply, per kind; more than this is a client flooding the proxy. */
const MAX_OUTSTANDING = 65_536;
const MAX_OPEN_FILES = 1024;

/** The data of one streamed write or data reply: the file it belongs to (if known) and how much is still to come. */
interface StreamedData<T> {
  file: OpenFile<T> | undefined;
  left: number;
}

interface OpenFile<T> {
  token: T;
  path: string;
  hash: Hash;
  bytesRead: number;
  bytesWritten: number;
  nextOffset: number;
  sequential: boolean;
}

/**
 * Relays an sftp channel packet by packet. Opens, removes, renames, mkdir/rmdir, setstat and
 * links are decided before they reach the target (a refused one gets SSH_FX_PERMISSION_DENIED
 * with Agate's reason); reads and writes are accounted to their open file, whose bytes and
 * digest are recorded when it is closed. Everything else is forwarded the moment it arrives,
 * and large writes and data replies piece by piece (their data hashed on the way), so the
 * requests a client keeps in flight stay in flight. The client is not read while a decision is
 * pending or the target is behind; the target is paused while the client is behind, so the SSH
 * window follows the slower side.
 */
export function relaySftp<T>(client: ServerChannel, upstream: ClientChannel, hooks: SftpHooks<T>): Promise<SftpOutcome> {
  return new Promise((resolve) => {
    const up = new PacketFramer({ streamed: [PacketType.Write] });
    const down = new PacketFramer({ streamed: [PacketType.Data] });
    const opens = new Map<number, { token: T; path: string }>();
    const changes = new Map<number, T>();
    const reads = new Map<number, { handle: string; offset: number }>();
    const closes = new Map<number, string>();
    const files = new Map<string, OpenFile<T>>();
    let bytes = 0;
    let bytesUp = 0;
    let exitCode: number | null = null;
    let signal: string | null = null;
    let finished = false;
    let failure: AgateError | undefined;
    const writes = new ClientWrites();
    /** The streamed write (client side) and data reply (target side) in progress: whose data the next bytes are. */
    let upData: StreamedData<T> | undefined;
    let downData: StreamedData<T> | undefined;
    /** Agate's own replies wait here while a streamed reply is half sent, so none is spliced into it. */
    let heldReplies: Buffer[] = [];

    const toClient = (packet: Buffer): boolean => {
      return writes.write(client, packet);
    };
    const bounded = <K, V>(map: Map<K, V>, key: K, value: V) => {
      if (map.size >= MAX_OUTSTANDING) throw new ProtocolError(`more than ${MAX_OUTSTANDING} sftp requests outstanding`, ErrorCode.PROTOCOL_VIOLATION);
      map.set(key, value);
    };

    /** Applies one client request: true to forward it, false when refused, a promise while it is decided. */
    const request = (req: SftpRequest): boolean | Promise<boolean> => {
      switch (req.kind) {
        case 'open': {
          const operation = (req.flags & OPEN_WRITE_FLAGS) !== 0 ? 'write' : 'read';
          return hooks.decide({ operation, path: req.path, request: 'open' }).then((d) => {
            if (d.refusal !== undefined) return refuse(req.id, d.token, d.refusal);
            bounded(opens, req.id, { token: d.token, path: req.path });
            return true;
          });
        }
        case 'change':
          return hooks.decide({ operation: req.operation, path: req.path, targetPath: req.targetPath, request: req.name }).then((d) => {
            if (d.refusal !== undefined) return refuse(req.id, d.token, d.refusal);
            bounded(changes, req.id, d.token);
            return true;
          });
        case 'fsetstat': {
          const file = files.get(req.handle);
          return hooks.decide({ operation: 'setstat', path: file?.path ?? '(unknown handle)', request: 'fsetstat' }).then((d) => {
            if (d.refusal !== undefined) return refuse(req.id, d.token, d.refusal);
            bounded(changes, req.id, d.token);
            return true;
          });
        }
        case 'read':
          bounded(reads, req.id, { handle: req.handle, offset: req.offset });
          return true;
        case 'write': {
          const file = files.get(req.handle);
          if (file !== undefined) {
            begin(file, req.offset, req.data.length);
            file.hash.update(req.data);
            file.bytesWritten += req.data.length;
          }
          return true;
        }
        case 'close':
          bounded(closes, req.id, req.handle);
          return true;
        default:
          return true;
      }
    };
    const refuse = (id: number, token: T, reason: string): false => {
      const status = statusPacket(id, StatusCode.PermissionDenied, reason);
      if (downData === undefined) toClient(status);
      else heldReplies.push(status);
      hooks.finished(token, { ok: false, refused: true, message: reason, bytesRead: 0, bytesWritten: 0, digest: null, summary: 'refused' });
      return false;
    };
    /** A transfer of `length` bytes at `offset` starts: the digest holds only while they come in file order. */
    const begin = (file: OpenFile<T>, offset: number, length: number) => {
      if (offset !== file.nextOffset) file.sequential = false;
      file.nextOffset = offset + length;
    };
    /** The next bytes of a streamed transfer: hashed and counted against its file. */
    const carry = (data: StreamedData<T>, piece: Buffer, direction: 'read' | 'write') => {
      const n = Math.min(piece.length, data.left);
      data.left -= n;
      if (data.file === undefined || n === 0) return;
      data.file.hash.update(n === piece.length ? piece : piece.subarray(0, n));
      if (direction === 'write') data.file.bytesWritten += n;
      else data.file.bytesRead += n;
    };
    const fileResult = (file: OpenFile<T>, ok: boolean, message: string | null): FileResult => {
      const moved = file.bytesRead + file.bytesWritten;
      const digest = moved === 0 || !file.sequential ? null : `sha256:${file.hash.digest('hex')}`;
      const order = file.sequential ? '' : ' (out of order: no digest)';
      return { ok, message, bytesRead: file.bytesRead, bytesWritten: file.bytesWritten, digest, summary: `sftp ${file.path}: ${file.bytesWritten} bytes written, ${file.bytesRead} bytes read${order}` };
    };

    const reply = (r: SftpReply) => {
      if (r.kind === 'version') return;
      const open = opens.get(r.id);
      if (open !== undefined) {
        opens.delete(r.id);
        if (r.kind === 'handle') {
          if (files.size >= MAX_OPEN_FILES) throw new ProtocolError(`more than ${MAX_OPEN_FILES} files open at once`, ErrorCode.PROTOCOL_VIOLATION);
          files.set(r.handle, { token: open.token, path: open.path, hash: createHash('sha256'), bytesRead: 0, bytesWritten: 0, nextOffset: 0, sequential: true });
        } else {
          const message = r.kind === 'status' ? r.message || `status ${r.code}` : 'unexpected reply';
          hooks.finished(open.token, { ok: false, message, bytesRead: 0, bytesWritten: 0, digest: null, summary: 'open failed' });
        }
        return;
      }
      const read = reads.get(r.id);
      if (read !== undefined) {
        reads.delete(r.id);
        const file = files.get(read.handle);
        if (file !== undefined && r.kind === 'data') {
          begin(file, read.offset, r.data.length);
          file.hash.update(r.data);
          file.bytesRead += r.data.length;
        }
        return;
      }
      const close = closes.get(r.id);
      if (close !== undefined) {
        closes.delete(r.id);
        const file = files.get(close);
        if (file === undefined) return;
        files.delete(close);
        const ok = r.kind === 'status' && r.code === StatusCode.Ok;
        hooks.finished(file.token, fileResult(file, ok, ok ? null : r.kind === 'status' ? r.message : 'unexpected reply'));
        return;
      }
      const change = changes.get(r.id);
      if (change !== undefined) {
        changes.delete(r.id);
        const ok = r.kind === 'status' && r.code === StatusCode.Ok;
        const message = r.kind === 'status' ? r.message || `status ${r.code}` : 'unexpected reply';
        hooks.finished(change, { ok, message: ok ? null : message, bytesRead: 0, bytesWritten: 0, digest: null, summary: ok ? 'ok' : message });
      }
    };
    /** A streamed data reply starts: accounted to the read it answers. */
    const replyHead = (h: DataHead): StreamedData<T> => {
      const read = reads.get(h.id);
      let file: OpenFile<T> | undefined;
      if (read !== undefined) {
        reads.delete(h.id);
        file = files.get(read.handle);
        if (file !== undefined) begin(file, read.offset, h.dataLength);
      }
      return { file, left: h.dataLength };
    };

    const fail = (err: unknown) => {
      failure = err instanceof AgateError ? err : new ProtocolError(`sftp relay failed: ${String(err)}`, ErrorCode.PROTOCOL_VIOLATION, { cause: err });
      client.stderr.write(`Agate closed the sftp channel: ${failure.message}\n`);
      client.close();
      upstream.close();
    };

    // Client → target. The client is held (not read, so no window granted) while a decision is
    // pending or the target's channel is full; both may hold it at once.
    let holds = 0;
    const hold = () => {
      if (holds++ === 0) client.pause();
    };
    const release = () => {
      if (--holds === 0 && !finished) client.resume();
    };
    let upstreamFull = false;
    const toUpstream = (bytes: Buffer) => {
      if (upstream.write(bytes) || upstreamFull) return;
      upstreamFull = true;
      hold();
      upstream.once('drain', () => {
        upstreamFull = false;
        release();
      });
    };
    const upOut = new Outbox(toUpstream);
    /** Forwards frames[from..] in order; returns a promise when a decision made it wait. */
    const forwardUp = (frames: Frame[], from: number): Promise<void> | undefined => {
      for (let i = from; i < frames.length; i += 1) {
        if (finished) return undefined;
        const f = frames[i]!;
        if (f.kind === 'head') {
          const h = parseWriteHead(f.head.subarray(4), f.length - 4);
          const file = files.get(h.handle);
          if (file !== undefined) begin(file, h.offset, h.dataLength);
          upData = { file, left: h.dataLength };
          carry(upData, h.data, 'write');
          upOut.add(f.head);
        } else if (f.kind === 'rest') {
          carry(upData!, f.bytes, 'write');
          if (f.last) upData = undefined;
          upOut.add(f.bytes);
        } else {
          const verdict = request(parseRequest(f.packet.subarray(4)));
          if (verdict === true) upOut.add(f.packet);
          else if (verdict !== false) {
            upOut.flush();
            hold();
            return verdict.then((forward) => {
              if (forward && !finished) upOut.add(f.packet);
              const next = forwardUp(frames, i + 1);
              release();
              return next;
            });
          }
        }
      }
      upOut.flush();
      return undefined;
    };
    // The last decision still pending; the client's EOF must reach the target after it.
    let batch: Promise<void> = Promise.resolve();
    client.on('data', (chunk: Buffer) => {
      bytesUp += chunk.length;
      try {
        const waiting = forwardUp(up.push(chunk), 0);
        if (waiting !== undefined) batch = waiting.catch(fail);
      } catch (err) {
        fail(err);
      }
    });
    client.on('end', () => void batch.then(() => upstream.end()));

    // Target → client: whole packets or streamed data replies; Agate's refusals go between packets.
    let clientFull = false;
    const downOut = new Outbox((bytes) => {
      clientFull = !toClient(bytes) || clientFull;
    });
    upstream.on('data', (chunk: Buffer) => {
      try {
        for (const f of down.push(chunk)) {
          if (f.kind === 'head') {
            const h = parseDataHead(f.head.subarray(4), f.length - 4);
            downData = replyHead(h);
            carry(downData, h.data, 'read');
            bytes += f.head.length;
            downOut.add(f.head);
          } else if (f.kind === 'rest') {
            carry(downData!, f.bytes, 'read');
            bytes += f.bytes.length;
            downOut.add(f.bytes);
            if (f.last) {
              downData = undefined;
              for (const held of heldReplies) downOut.add(held);
              heldReplies = [];
            }
          } else {
            reply(parseReply(f.packet.subarray(4)));
            bytes += f.packet.length;
            downOut.add(f.packet);
          }
        }
        downOut.flush();
        if (clientFull) {
          clientFull = false;
          upstream.pause();
          client.once('drain', () => upstream.resume());
        }
      } catch (err) {
        fail(err);
      }
    });
    upstream.stderr.on('data', (chunk: Buffer) => client.stderr.write(chunk));
    upstream.on('exit', (code: number | null, sig?: string) => {
      if (typeof code === 'number') exitCode = code;
      else if (sig !== undefined) signal = sig;
    });
    client.resume(); // paused while the channel itself was decided

    const finish = (clientGone: boolean) => {
      if (finished) return;
      finished = true;
      // Files still open when the channel ended: recorded with what moved so far.
      for (const file of files.values()) hooks.finished(file.token, fileResult(file, false, 'the channel closed before the file was closed'));
      files.clear();
      // No digest of the channel itself: each file has its own, and hashing the stream twice halves download speed.
      resolve({ exitCode, signal, bytes, bytesUp, digest: null, clientGone, error: failure });
    };
    upstream.on('close', () => {
      const end = () => {
        if (exitCode !== null) client.exit(exitCode);
        client.end();
        finish(false);
      };
      writes.whenFlushed(end);
    });
    client.on('close', () => {
      if (!finished) upstream.close();
      finish(!finished && failure === undefined);
    });
  });
}
