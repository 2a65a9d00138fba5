import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, describeError } from '../../../../core/src/errors.js';
import type { Logger } from '../../../../core/src/log.js';
import type { Command } from '../../../../schemas/src/events.js';
import type { Masker } from '../masking/masker.js';
import { clientHeaders, rawHeader } from './headers.js';
import { maskDocument } from './json-mask.js';
import { LineSplitter } from './lines.js';
import { refusedEvent, responseEvent, sha256, watchEnd, watchEvent, type K8sRecording } from './recording.js';
import { addressedKind, isJson } from './request-body.js';
import type { RequestInfo } from './request-info.js';
import type { KubeSession } from './session.js';
import { failure, statusBody, type Status } from './status.js';

/*
 * The three ways an API server's answer reaches the client, each recording one Response (or one
 * per watch event): streamed, masked (buffered, bounded), or a watch (line by line).
 */

interface RelayContext {
  session: KubeSession;
  command: Command;
  upRes: IncomingMessage;
  res: ServerResponse;
  /** The mask set the client's copy goes through; undefined: delivered as the API server sent it. */
  client: Masker | undefined;
  /** Rewrites the parsed answer before delivery (a self-review answered for the agent); buffered like a masked one. */
  rewrite?: (doc: unknown) => Promise<void>;
  started: number;
  info: RequestInfo;
  target: { name: string; recording: K8sRecording; maxBufferBytes: number };
  log: Logger;
  /** Aborted when the proxy drains: a watch then ends cleanly (see relayWatch). */
  stop?: AbortSignal;
}

/**
 * Unmasked: streamed as it comes. Within the cap every chunk is kept for the record anyway, so
 * its digest is taken in one go after the client has the answer; a running digest starts only
 * when the answer outgrows the cap (then only the count and digest are recorded).
 */
export function relayStream(ctx: RelayContext): void {
  const { session, command, upRes, res, started } = ctx;
  const cap = ctx.target.maxBufferBytes;
  const kept: Buffer[] = [];
  let running: Hash | undefined;
  let bytes = 0;
  const contentType = rawHeader(upRes.rawHeaders, 'content-type');
  res.writeHead(upRes.statusCode ?? 502, clientHeaders(upRes.rawHeaders));
  upRes.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (running !== undefined) running.update(chunk);
    else if (bytes <= cap) kept.push(chunk);
    else {
      running = createHash('sha256');
      for (const k of kept) running.update(k);
      running.update(chunk);
      kept.length = 0;
    }
    if (!res.write(chunk)) {
      upRes.pause();
      res.once('drain', () => upRes.resume());
    }
  });
  upRes.on('end', () => {
    res.end();
    // Most answers (a get) arrive in one chunk: recorded as it is, not copied.
    const whole = running !== undefined ? undefined : kept.length === 1 ? kept[0]! : Buffer.concat(kept, bytes);
    const digest = bytes === 0 ? null : whole !== undefined ? sha256(whole) : `sha256:${running!.digest('hex')}`;
    const doc = whole === undefined ? undefined : parseJson(whole, contentType);
    void session.events.emitLogged(responseEvent(command, { code: upRes.statusCode ?? 0, bytes, digest, doc, maskedForClient: 0, started, contentType }, ctx.target.recording));
  });
  upRes.on('error', () => undefined); // reported by 'aborted'
  upRes.on('aborted', () => {
    if (!upRes.complete) aborted(ctx, 'the response ended early: the client or the API server closed the connection');
  });
}

/** Masked (or rewritten) for the client: buffered (bounded), masked, then delivered; anything unmaskable is withheld. */
export function relayMasked(ctx: RelayContext): void {
  const { session, command, upRes, res, client, started, info, rewrite } = ctx;
  const { maxBufferBytes: cap, recording, name } = ctx.target;
  const parts: Buffer[] = [];
  let size = 0;
  let settled = false;
  const withhold = (why: string) => {
    settled = true;
    const message = `Agate withheld the response: ${why}, and ${rewrite === undefined ? 'the policy requires it masked' : 'Agate must answer it for the agent'}`;
    void session.events.emitLogged(refusedEvent(command, 'error', ErrorCode.MASKING_FAILED, message));
    sendStatus(res, failure('InternalError', message, info, 502), info);
  };
  upRes.on('data', (chunk: Buffer) => {
    if (settled) return; // chunks already read before the destroy below still arrive
    size += chunk.length;
    if (size > cap) {
      settled = true; // before destroy(), which reports 'aborted' at once
      upRes.destroy();
      parts.length = 0;
      return withhold(`it is larger than ${cap} bytes (targets.${name}.max_buffer_bytes)`);
    }
    parts.push(chunk);
  });
  upRes.on('end', () => void deliver());
  const deliver = async () => {
    if (settled) return;
    settled = true;
    const raw = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
    const contentType = rawHeader(upRes.rawHeaders, 'content-type');
    let out = raw;
    let doc: unknown;
    let masked = 0;
    if (raw.length > 0) {
      doc = parseJson(raw, contentType);
      if (doc === undefined) return withhold(`it is not JSON (${contentType ?? 'no content type'})`);
      masked = maskDocument(doc, { fields: recording.fields, masker: client, tableKind: addressedKind(info) });
      if (rewrite !== undefined && (upRes.statusCode ?? 0) < 300) {
        try {
          await rewrite(doc);
        } catch (err) {
          return withhold(`it could not be answered (${describeError(err)})`);
        }
      }
      out = Buffer.from(JSON.stringify(doc));
    }
    res.writeHead(upRes.statusCode ?? 502, clientHeaders(upRes.rawHeaders, out.length));
    res.end(out);
    void session.events.emitLogged(responseEvent(command, { code: upRes.statusCode ?? 0, bytes: out.length, digest: out.length === 0 ? null : sha256(out), doc, maskedForClient: masked, started, contentType }, recording));
  };
  upRes.on('error', () => undefined); // reported by 'aborted', or the response was withheld on purpose
  upRes.on('aborted', () => {
    if (settled) return;
    settled = true;
    aborted(ctx, 'the response ended early: the client or the API server closed the connection');
  });
}

/** A watch: one JSON event per line, each recorded (and masked for the client when required) as it passes. */
export function relayWatch(ctx: RelayContext): void {
  new WatchRelay(ctx).start();
}

/**
 * One watch in flight. It ends exactly once, whichever comes first: the API server ends it,
 * either side closes, an event cannot be read or masked (fail closed: the watch ends
 * undelivered), or Agate drains. The end is recorded with the events and bytes delivered and a
 * digest of everything the client received.
 */
class WatchRelay {
  readonly #ctx: RelayContext;
  readonly #lines: LineSplitter;
  /** Over the bytes the client received. */
  readonly #hash = createHash('sha256');
  #bytes = 0;
  #events = 0;
  #phase: { kind: 'streaming' } | { kind: 'ended'; failed: string | null } = { kind: 'streaming' };
  readonly #onStop = () => this.#stop();

  constructor(ctx: RelayContext) {
    this.#ctx = ctx;
    this.#lines = new LineSplitter(ctx.target.maxBufferBytes);
  }

  start(): void {
    const { upRes, res, stop } = this.#ctx;
    res.writeHead(200, clientHeaders(upRes.rawHeaders));
    upRes.on('data', (chunk: Buffer) => this.#onData(chunk));
    upRes.on('end', () => this.#onEnd());
    upRes.on('error', () => undefined); // a watch ends by either side closing; 'close' below records it
    upRes.once('close', () => {
      if (this.#end('200 watch aborted', 'the API server closed the watch before its end')) res.destroy();
    });
    res.once('close', () => {
      if (this.#end('200 watch ended by the client', null)) upRes.destroy();
    });
    if (stop?.aborted) this.#stop();
    else stop?.addEventListener('abort', this.#onStop, { once: true });
  }

  #onData(chunk: Buffer): void {
    if (this.#phase.kind === 'ended') return;
    try {
      for (const line of this.#lines.push(chunk)) this.#deliver(line);
    } catch (err) {
      // Fail closed: an event that cannot be read or masked ends the watch undelivered.
      const failed = describeError(err);
      this.#ctx.log.warn('watch aborted', { error: failed });
      this.#end('200 watch aborted', failed);
      this.#ctx.upRes.destroy();
      this.#ctx.res.destroy();
    }
  }

  #onEnd(): void {
    if (this.#phase.kind === 'ended') return;
    const last = this.#lines.end();
    let failed: string | null = null;
    try {
      if (last !== undefined) this.#deliver(last);
    } catch (err) {
      failed = describeError(err);
    }
    this.#end('200 watch ended by the API server', failed);
    this.#ctx.res.end();
  }

  /**
   * A drain (or the token's expiry, the signal's reason) ends the stream properly (the client sees the watch end, not a broken connection)
   * after the last whole event; a partial line was never delivered, so it is not recorded.
   */
  #stop(): void {
    const why = this.#ctx.stop?.reason;
    if (!this.#end(`200 watch ended by Agate (${typeof why === 'string' ? why : 'shutting down'})`, null)) return;
    this.#ctx.upRes.destroy();
    this.#ctx.res.end();
  }

  #deliver(line: Buffer): void {
    if (line.length === 0) return;
    const { client, session, command, target, res, upRes, info } = this.#ctx;
    let doc: unknown;
    try {
      doc = JSON.parse(line.toString('utf8'));
    } catch {
      doc = undefined;
    }
    if (doc === undefined && client !== undefined) throw new Error('a watch event is not JSON and cannot be masked');
    let out = Buffer.concat([line, NEWLINE]);
    let masked = 0;
    if (client !== undefined) {
      masked = maskDocument(doc, { fields: target.recording.fields, masker: client, tableKind: addressedKind(info) });
      out = Buffer.from(`${JSON.stringify(doc)}\n`);
    }
    this.#hash.update(out);
    this.#bytes += out.length;
    this.#events += 1;
    void session.events.emitLogged(watchEvent(command, doc ?? { type: 'UNREADABLE' }, out, masked, target.recording));
    if (!res.write(out)) {
      upRes.pause();
      res.once('drain', () => upRes.resume());
    }
  }

  /** Moves to ended and records the end; false when it had already ended (nothing done). */
  #end(tag: string, failed: string | null): boolean {
    if (this.#phase.kind === 'ended') return false;
    this.#phase = { kind: 'ended', failed };
    const { stop, session, command, started } = this.#ctx;
    stop?.removeEventListener('abort', this.#onStop);
    void session.events.emitLogged(watchEnd(command, tag, this.#events, this.#bytes, `sha256:${this.#hash.copy().digest('hex')}`, started, failed));
    return true;
  }
}

function aborted(ctx: RelayContext, message: string): void {
  void ctx.session.events.emitLogged(refusedEvent(ctx.command, 'error', ErrorCode.UPSTREAM_UNREACHABLE, message));
  ctx.res.destroy();
}

const NEWLINE = Buffer.from('\n');

function parseJson(raw: Buffer, contentType: string | undefined): unknown {
  if (raw.length === 0 || !isJson(contentType)) return undefined;
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Answers with a Status; for a non-resource request as text (see below). */
export function sendStatus(res: ServerResponse, s: Status, info?: RequestInfo): void {
  if (res.headersSent) return void res.destroy();
  // client-go decodes discovery errors with the discovery scheme, where a Status is unknown: it
  // would print "an error on the server (\"unknown\")". A text body it quotes verbatim.
  const text = info?.kind === 'non-resource' && s.code !== 401;
  const body = text ? Buffer.from(s.message) : statusBody(s);
  res.writeHead(s.code, { 'content-type': text ? 'text/plain; charset=utf-8' : 'application/json', 'content-length': body.length, 'cache-control': 'no-store' });
  res.end(body);
}
