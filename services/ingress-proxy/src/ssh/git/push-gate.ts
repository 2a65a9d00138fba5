import { Writable } from 'node:stream';
import { forcedUpdate, type AncestryCheck, type Forced } from './fast-forward.js';
import { GrowBuffer } from './grow-buffer.js';
import { PackCommits, type HashAlgorithm } from './pack-commits.js';
import { readPushRequest, type PushRequest, type RefCommand } from './push-request.js';
import { refusalReport } from './report.js';

/** The longest command section read before the push is refused as unreadable. */
const MAX_PUSH_REQUEST = 1024 * 1024;
/** Pack bytes held to learn the new commits' parents; past it the updates not yet proven are `unknown`. */
const MAX_PACK_HELD = 32 * 1024 * 1024;

export interface RefUpdate extends RefCommand {
  forced: Forced;
}

export type PushVerdict = { run: true } | { run: false; message: string };

export interface PushGateHooks {
  /** Records and decides the push; called once, before any byte of it reaches the target. */
  decide(updates: RefUpdate[]): Promise<PushVerdict>;
  /** Records a push Agate cannot read (refused without asking policy); returns the client's message. */
  unreadable(reason: string): string;
  /** Answers the target's part of the ancestry question. */
  ancestry: AncestryCheck;
  /** Writes to the client, in order with what the target sent before. */
  reply(bytes: Buffer): void;
  /** Tells the client on stderr (when its git asked for no report). */
  notice(text: string): void;
  maxPackHeld?: number;
}

type State = 'reading' | 'deciding' | 'open' | 'refused';

/**
 * Stands between the client and the target's `git-receive-pack`: holds the client's ref update
 * commands (and, when an update needs it, the pack, up to a cap) until the push is decided as a
 * whole. Allowed: the held bytes and everything after go to the target. Refused: the target is
 * sent an empty command list (it changes nothing and exits), the client gets report-status `ng`
 * lines, and the rest of its pack is read and dropped.
 */
export class PushGate extends Writable {
  readonly #upstream: Writable;
  readonly #hooks: PushGateHooks;
  readonly #held = new GrowBuffer();
  #state: State = 'reading';
  #request: PushRequest | undefined;
  #pack: PackCommits | undefined;
  /** Set once the refused push's client has sent all it will (pack complete, or none). */
  #refusalDone = false;

  constructor(upstream: Writable, hooks: PushGateHooks) {
    super();
    this.#upstream = upstream;
    this.#hooks = hooks;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#state === 'open') return this.#forward(chunk, callback);
    if (this.#state === 'refused') return callback(); // the rest of a refused pack: dropped
    this.#held.append(chunk);
    const ready = this.#readyToDecide();
    if (ready === 'more') return callback();
    // Never an error on this stream: whatever fails while deciding refuses the push (fail closed).
    void this.#settle(ready).catch((err: unknown) => this.#refuse(`Agate refused the push: it could not be decided (${(err as Error).message})`, true)).then(() => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#state === 'open') {
      // The target may have closed first (a deletion-only push ends once it has answered).
      if (!this.#upstream.writableEnded) this.#upstream.end();
      return callback();
    }
    if (this.#state === 'reading') {
      // The client ended before its request did: nothing unread reaches the target.
      this.#state = 'refused';
      if (!this.#upstream.writableEnded) this.#upstream.end();
      return callback();
    }
    this.#finishRefusal();
    callback();
  }

  /** `more` while bytes are still needed; otherwise what to decide on. */
  #readyToDecide(): 'more' | 'decide' | { invalid: string } {
    const held = this.#held.view();
    if (this.#request === undefined) {
      const read = readPushRequest(held);
      if (read.kind === 'invalid') return { invalid: read.reason };
      if (read.kind === 'more') return held.length > MAX_PUSH_REQUEST ? { invalid: `the ref update commands exceed ${MAX_PUSH_REQUEST} bytes` } : 'more';
      this.#request = read.request;
      const hash: HashAlgorithm = read.request.capabilities.includes('object-format=sha256') ? 'sha256' : 'sha1';
      // Only an update of an existing ref asks whether it is fast-forward, and only then is the pack read.
      if (read.request.commands.some((c) => c.action === 'update')) this.#pack = new PackCommits(hash);
    }
    const request = this.#request;
    if (this.#pack === undefined) return 'decide';
    const pack = held.subarray(request.packStart);
    if (this.#pack.update(pack) || this.#pack.stopped !== undefined) return 'decide';
    return pack.length > (this.#hooks.maxPackHeld ?? MAX_PACK_HELD) ? 'decide' : 'more';
  }

  async #settle(ready: 'decide' | { invalid: string }): Promise<void> {
    this.#state = 'deciding';
    if (ready !== 'decide') return this.#refuse(this.#hooks.unreadable(ready.invalid), true);
    const request = this.#request!;
    if (request.commands.length === 0) return this.#open(); // nothing to update: the flush goes on
    const parents = this.#pack?.parents ?? new Map<string, string[]>();
    const updates: RefUpdate[] = [];
    for (const c of request.commands) updates.push({ ...c, forced: await forcedUpdate(c, parents, this.#hooks.ancestry) });
    const verdict = await this.#hooks.decide(updates);
    if (verdict.run) return this.#open();
    // A pack not read to its end (none was needed, or it passed the cap): the client's EOF marks its end.
    return this.#refuse(verdict.message, !request.packFollows || this.#pack?.complete === true);
  }

  async #open(): Promise<void> {
    this.#state = 'open';
    await new Promise<void>((resolve) => this.#forward(this.#held.view(), () => resolve()));
  }

  #forward(chunk: Buffer, callback: () => void): void {
    if (this.#upstream.write(chunk)) callback();
    else this.#upstream.once('drain', callback);
  }

  #refuse(message: string, clientDone: boolean): void {
    this.#state = 'refused';
    const report = this.#request === undefined ? undefined : refusalReport(this.#request, message);
    if (report !== undefined) this.#hooks.reply(report);
    else this.#hooks.notice(message);
    // Deletions only, or the whole pack is in: the client now waits for the report.
    if (clientDone) this.#finishRefusal();
  }

  /** The target gets an empty command list: receive-pack changes nothing and exits. */
  #finishRefusal(): void {
    if (this.#refusalDone) return;
    this.#refusalDone = true;
    if (!this.#upstream.writableEnded) this.#upstream.end(Buffer.from('0000'));
  }
}
