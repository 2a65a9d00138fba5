import { ErrorCode, ProtocolError } from '../../../../core/src/errors.js';
import { decodeStartupPacket, decodeTypedMessage, isFrontendCode } from './frontend-decode.js';
import type { FrontendMessage } from './messages.js';

/** PostgreSQL refuses any message over 1 GiB (PQ_LARGE_MESSAGE_LIMIT). */
const DEFAULT_MAX_MESSAGE_SIZE = 1 << 30;
/** The postmaster's MAX_STARTUP_PACKET_LENGTH: startup packets are small and unauthenticated. */
const MAX_STARTUP_PACKET = 10_000;
/** Storage above this size is released once drained, so one huge COPY row doesn't pin memory. */
const RETAIN_LIMIT = 1 << 20;
const MIN_STORAGE = 8 << 10;
const EMPTY = Buffer.alloc(0);

/**
 * - `startup`: untyped packets (Int32 length, Int32 code). SSLRequest and GSSENCRequest keep the
 *   parser here, because the client then sends another startup packet (over TLS or in clear).
 * - `typed`: entered automatically after a StartupMessage; 1 type byte + Int32 length frames.
 * - `ended`: after CancelRequest or Terminate; the client must send nothing more.
 */
type ParserPhase = 'startup' | 'typed' | 'ended';

export interface FrontendParserOptions {
  /** Largest declared frame length accepted (the length field's value); default 1 GiB. */
  maxMessageSize?: number;
}

/**
 * Splits the client's byte stream into frontend messages. Feed socket chunks to {@link push};
 * each complete message is decoded and passed, synchronously and in order, to `onMessage`.
 * Partial frames wait for more data. The phase advances by itself (see {@link ParserPhase}).
 *
 * A {@link ProtocolError} from push leaves the stream desynchronised: the parser stays failed and
 * rethrows it on every later push, and the caller should send an ErrorResponse and close.
 *
 * Buffering: when nothing is pending, frames are read straight from the pushed chunk; only an
 * incomplete tail is copied into one owned buffer, which grows by doubling (or is compacted)
 * instead of concatenating every chunk. Each emitted frame is copied once into its own Buffer,
 * so `raw` and the views inside a message stay valid after later pushes.
 */
export class FrontendParser {
  private readonly maxMessageSize: number;
  private current: ParserPhase = 'startup';
  private failure: ProtocolError | undefined;
  private sawSSL = false;
  private sawGSS = false;
  /** Owned storage for an incomplete tail, reused across pushes. */
  private storage: Buffer = EMPTY;
  /** What is being parsed: `storage`, or during a push the caller's chunk. */
  private view: Buffer = EMPTY;
  private start = 0;
  private end = 0;

  constructor(private readonly onMessage: (msg: FrontendMessage) => void, options: FrontendParserOptions = {}) {
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  }

  /** Which framing the next bytes are read with. */
  get phase(): ParserPhase {
    return this.current;
  }

  /** Bytes received but not yet emitted as a message. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** Consumes a chunk, emitting every message it completes. Throws ProtocolError on bad input. */
  push(chunk: Buffer): void {
    if (this.failure) throw this.failure;
    if (this.start === this.end) {
      this.view = chunk;
      this.start = 0;
      this.end = chunk.length;
    } else {
      this.append(chunk);
    }
    try {
      for (let msg = this.next(); msg; msg = this.next()) this.onMessage(msg);
    } finally {
      this.retain();
    }
  }

  /** Cuts and decodes the next complete frame, or returns undefined if more bytes are needed. */
  private next(): FrontendMessage | undefined {
    try {
      const avail = this.end - this.start;
      if (avail === 0) return undefined;
      if (this.current === 'ended') throw new ProtocolError('unexpected data after CancelRequest or Terminate');
      const typed = this.current === 'typed';
      const header = typed ? 5 : 4;
      if (avail < header) return undefined;
      if (typed && !isFrontendCode(this.view[this.start]!)) {
        throw new ProtocolError(`invalid frontend message type 0x${this.view[this.start]!.toString(16)}`);
      }
      // Checked as soon as the length is known, before the body is waited for or buffered.
      const length = this.view.readUInt32BE(this.start + header - 4);
      this.checkLength(length, typed);
      const size = length + (typed ? 1 : 0);
      if (avail < size) return undefined;
      const raw = Buffer.from(this.view.subarray(this.start, this.start + size));
      this.start += size;
      return typed ? this.afterTyped(decodeTypedMessage(raw)) : this.afterStartup(decodeStartupPacket(raw));
    } catch (err) {
      if (err instanceof ProtocolError) this.failure = err;
      throw err;
    }
  }

  private checkLength(length: number, typed: boolean): void {
    const min = typed ? 4 : 8; // the length counts itself; startup packets also carry a code
    const max = typed ? this.maxMessageSize : Math.min(MAX_STARTUP_PACKET, this.maxMessageSize);
    if (length < min) throw new ProtocolError(`invalid message length ${length}`);
    if (length > max) {
      throw new ProtocolError(`message length ${length} exceeds limit ${max}`, ErrorCode.PROTOCOL_FRAME_TOO_LARGE);
    }
  }

  private afterStartup(msg: FrontendMessage): FrontendMessage {
    if (msg.type === 'sslRequest' || msg.type === 'gssEncRequest') {
      // A client must wait for the one-byte answer; bytes already queued behind the request
      // would straddle the switch to encryption (the server rejects them, CVE-2021-23214).
      if (this.end > this.start) throw new ProtocolError('received unencrypted data after encryption request');
      const seen = msg.type === 'sslRequest' ? this.sawSSL : this.sawGSS;
      if (seen) throw new ProtocolError(`duplicate ${msg.type}`);
      if (msg.type === 'sslRequest') this.sawSSL = true;
      else this.sawGSS = true;
    } else {
      this.current = msg.type === 'startup' ? 'typed' : 'ended';
    }
    return msg;
  }

  private afterTyped(msg: FrontendMessage): FrontendMessage {
    if (msg.type === 'terminate') this.current = 'ended';
    return msg;
  }

  /** Appends a chunk behind the pending tail in `storage`, compacting or doubling as needed. */
  private append(chunk: Buffer): void {
    const pending = this.end - this.start;
    const needed = pending + chunk.length;
    if (this.end + chunk.length > this.storage.length) {
      if (needed <= this.storage.length) {
        this.storage.copyWithin(0, this.start, this.end);
      } else {
        let size = Math.max(this.storage.length * 2, MIN_STORAGE);
        while (size < needed) size *= 2;
        const grown = Buffer.allocUnsafe(size);
        this.storage.copy(grown, 0, this.start, this.end);
        this.storage = grown;
      }
      this.start = 0;
      this.end = pending;
    }
    chunk.copy(this.storage, this.end);
    this.end += chunk.length;
    this.view = this.storage;
  }

  /** After a push: keep an unread tail in owned storage; never hold on to the caller's chunk. */
  private retain(): void {
    if (this.start === this.end) {
      if (this.storage.length > RETAIN_LIMIT) this.storage = EMPTY;
      this.view = this.storage;
      this.start = this.end = 0;
    } else if (this.view !== this.storage) {
      const tail = this.view.subarray(this.start, this.end);
      this.view = this.storage;
      this.start = this.end = 0;
      this.append(tail);
    }
  }
}
