import { createHash, type Hash } from 'node:crypto';
import { inflateSync } from 'node:zlib';

/**
 * Reads the commits out of a git pack as it arrives, to learn each new commit's parents before
 * the pack reaches the target (a push is fast-forward only if the old tip is among the new tip's
 * ancestors). Layout (git's gitformat-pack):
 *
 *   "PACK" | version (4, = 2) | object count (4) | objects… | trailer (hash of all the above)
 *   object: header varint (type in bits 6–4 of the first byte, size in the rest)
 *           [OFS_DELTA: negative offset varint | REF_DELTA: base oid] | zlib stream
 *
 * Only commits are kept, resolved through deltas whose base is a kept commit; a commit Agate
 * cannot resolve (a delta against an object outside the pack) is simply missing, which makes
 * the walk stop there and the answer "cannot prove".
 */
const enum ObjectType {
  Commit = 1,
  Tree = 2,
  Blob = 3,
  Tag = 4,
  OfsDelta = 6,
  RefDelta = 7,
}

/** A commit whose text is larger than this is not kept (nor is a delta that would produce one). */
const MAX_COMMIT_BYTES = 1024 * 1024;
/** Bytes awaited past a failed attempt before an object's zlib stream is inflated again. */
const RETRY_STEP = 64 * 1024;

export type HashAlgorithm = 'sha1' | 'sha256';

interface Delta {
  /** Where the delta object starts in the pack (an OFS_DELTA names its base this way). */
  at: number;
  base: { offset: number } | { oid: string };
  data: Buffer;
}

export class PackCommits {
  /** Commit oid → parent oids. */
  readonly parents = new Map<string, string[]>();
  readonly #hash: HashAlgorithm;
  readonly #oidBytes: number;
  #count: number | undefined;
  #parsed = 0;
  #at = 0;
  #retryAt = 0;
  /** Set when the pack cannot be read on (malformed, an object too large); commits read so far stand. */
  stopped: string | undefined;
  readonly #commitAt = new Map<number, Buffer>();
  readonly #commitByOid = new Map<string, Buffer>();
  readonly #deltas: Delta[] = [];
  /** Hash of the bytes before the last trailer-length bytes: equal to those bytes once the pack has all arrived. */
  readonly #running: Hash;
  #hashed = 0;

  constructor(hash: HashAlgorithm = 'sha1') {
    this.#hash = hash;
    this.#oidBytes = hash === 'sha1' ? 20 : 32;
    this.#running = createHash(hash);
  }

  /** True once every object and the trailer have been read. */
  get complete(): boolean {
    return this.#count !== undefined && this.#parsed === this.#count && this.stopped === undefined;
  }

  /** Where the pack (with its trailer) ends within the bytes given, once complete. */
  get end(): number | undefined {
    return this.complete ? this.#at + this.#oidBytes : undefined;
  }

  /**
   * Reads on from `pack`, the bytes of the pack received so far (always from its first byte).
   * Returns true once the whole pack, trailer included, has been received.
   */
  update(pack: Buffer): boolean {
    if (this.stopped !== undefined) return false;
    if (this.#count === undefined) {
      if (pack.length < 12) return false;
      if (pack.toString('latin1', 0, 4) !== 'PACK' || pack.readUInt32BE(4) !== 2) {
        this.#stop('not a version 2 pack');
        return false;
      }
      this.#count = pack.readUInt32BE(8);
      this.#at = 12;
    }
    // An object cut short is retried only once its bytes have doubled (so a large one is not
    // inflated again per chunk), or once the trailer shows the whole pack is in.
    if (this.#trailerArrived(pack)) this.#retryAt = 0;
    while (this.#parsed < this.#count && pack.length >= this.#retryAt) {
      const read = this.#readObject(pack, this.#at);
      if (read === 'more') {
        this.#retryAt = Math.max(pack.length + 1, this.#at + 2 * (pack.length - this.#at), pack.length + RETRY_STEP);
        return false;
      }
      if (read === 'stop') return false;
      this.#at = read;
      this.#parsed += 1;
      if (this.#parsed === this.#count) this.#resolveDeltas();
    }
    return this.#parsed === this.#count && pack.length >= this.#at + this.#oidBytes;
  }

  #trailerArrived(pack: Buffer): boolean {
    const body = pack.length - this.#oidBytes;
    if (body <= this.#hashed) return false;
    this.#running.update(pack.subarray(this.#hashed, body));
    this.#hashed = body;
    return this.#running.copy().digest().equals(pack.subarray(body));
  }

  /** Parses the object at `at`; its end offset, `more` when it has not fully arrived. */
  #readObject(pack: Buffer, start: number): number | 'more' | 'stop' {
    let at = start;
    if (at >= pack.length) return 'more';
    let byte = pack[at++]!;
    const type = (byte >> 4) & 7;
    let size = byte & 15;
    for (let shift = 4; byte & 0x80; shift += 7) {
      if (at >= pack.length) return 'more';
      if (shift > 35) return this.#stop('object size header too long');
      byte = pack[at++]!;
      size += (byte & 0x7f) * 2 ** shift;
    }
    let base: Delta['base'] | undefined;
    if (type === ObjectType.OfsDelta) {
      if (at >= pack.length) return 'more';
      byte = pack[at++]!;
      let distance = byte & 0x7f;
      while (byte & 0x80) {
        if (at >= pack.length) return 'more';
        if (distance > 2 ** 40) return this.#stop('delta offset too long');
        byte = pack[at++]!;
        distance = (distance + 1) * 128 + (byte & 0x7f);
      }
      if (distance === 0 || distance > start) return this.#stop('delta base offset outside the pack');
      base = { offset: start - distance };
    } else if (type === ObjectType.RefDelta) {
      if (at + this.#oidBytes > pack.length) return 'more';
      base = { oid: pack.toString('hex', at, at + this.#oidBytes) };
      at += this.#oidBytes;
    } else if (type !== ObjectType.Commit && type !== ObjectType.Tree && type !== ObjectType.Blob && type !== ObjectType.Tag) {
      return this.#stop(`unknown object type ${type}`);
    }
    // Only a commit's (or a small delta's) content is kept; other objects are inflated for their length.
    const keep = type === ObjectType.Commit || (base !== undefined && size <= MAX_COMMIT_BYTES);
    let inflated: { buffer: Buffer; engine: { bytesWritten: number } };
    try {
      inflated = inflateSync(pack.subarray(at), { info: true, maxOutputLength: Math.max(size, 1) }) as unknown as typeof inflated;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'Z_BUF_ERROR') return 'more';
      return this.#stop(`an object's data does not inflate: ${(err as Error).message}`);
    }
    if (inflated.buffer.length !== size) return this.#stop('an object is not the size its header says');
    if (keep && base !== undefined) this.#deltas.push({ at: start, base, data: inflated.buffer });
    else if (keep && size <= MAX_COMMIT_BYTES) this.#addCommit(start, inflated.buffer);
    return at + inflated.engine.bytesWritten;
  }

  #addCommit(offset: number, content: Buffer): void {
    const oid = createHash(this.#hash).update(`commit ${content.length}\0`).update(content).digest('hex');
    this.#commitAt.set(offset, content);
    this.#commitByOid.set(oid, content);
    this.parents.set(oid, commitParents(content));
  }

  /** Applies deltas whose base is a known commit, until no more resolve (chains in any order). */
  #resolveDeltas(): void {
    let pending = [...this.#deltas];
    for (let progress = true; progress && pending.length > 0; ) {
      progress = false;
      pending = pending.filter((d) => {
        const base = 'offset' in d.base ? this.#commitAt.get(d.base.offset) : this.#commitByOid.get(d.base.oid);
        if (base === undefined) return true;
        const content = applyDelta(base, d.data);
        if (content !== undefined) this.#addCommit(d.at, content);
        progress = true;
        return false;
      });
    }
  }

  #stop(reason: string): 'stop' {
    this.stopped = reason;
    return 'stop';
  }
}

/** The `parent` lines of a commit's header (up to its first blank line). */
function commitParents(content: Buffer): string[] {
  const text = content.toString('latin1', 0, Math.min(content.length, 64 * 1024));
  const header = text.split('\n\n', 1)[0]!;
  return header.split('\n').filter((l) => l.startsWith('parent ')).map((l) => l.slice(7).trim());
}

/**
 * git's delta: source size and target size (little-endian base-128), then instructions — copy
 * (high bit set; bits 0–3 select offset bytes, 4–6 size bytes, size 0 meaning 0x10000) or insert
 * (1–127 literal bytes). undefined when the delta does not fit its base.
 */
export function applyDelta(base: Buffer, delta: Buffer): Buffer | undefined {
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; at < delta.length; shift += 7) {
      const b = delta[at++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return value;
    }
    return -1;
  };
  if (varint() !== base.length) return undefined;
  const size = varint();
  if (size < 0 || size > MAX_COMMIT_BYTES) return undefined;
  const out = Buffer.alloc(size);
  let written = 0;
  while (at < delta.length) {
    const op = delta[at++]!;
    if (op & 0x80) {
      let offset = 0;
      let length = 0;
      for (let i = 0; i < 4; i += 1) if (op & (1 << i)) offset += delta[at++]! * 2 ** (8 * i);
      for (let i = 0; i < 3; i += 1) if (op & (16 << i)) length += delta[at++]! * 2 ** (8 * i);
      if (length === 0) length = 0x10000;
      if (offset + length > base.length || written + length > size) return undefined;
      base.copy(out, written, offset, offset + length);
      written += length;
    } else if (op !== 0) {
      if (at + op > delta.length || written + op > size) return undefined;
      delta.copy(out, written, at, at + op);
      at += op;
      written += op;
    } else {
      return undefined; // reserved
    }
  }
  return written === size ? out : undefined;
}
