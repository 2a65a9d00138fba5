import { createHash } from 'node:crypto';
import { isIP, type Socket } from 'node:net';
import { connect } from 'node:tls';
import { AgateError, ErrorCode, describeError } from '../../../../core/src/errors.js';
import type { KubeUpstream } from './upstream.js';

export type UpgradeOutcome =
  | { kind: 'unreachable'; error: Error }
  | {
    kind: 'relayed'; code: number; statusLine: string; bytesUp: number; bytesDown: number; digest: string | null; durationUs: number;
    /** Why Agate ended a read stream itself (a frame it could not read, a record it could not write). */
    failed?: { code: string; message: string };
  };

/**
 * Reads an upgraded stream both ways (exec and attach over WebSocket): only what it returns is
 * forwarded. A throw (or a rejection) ends the stream, both connections closed (fail closed).
 */
export interface StreamTap {
  /** Checks the API server's 101 head; a reason when the stream it opens cannot be read. */
  accept(headText: string): string | undefined;
  /** Client bytes → what may reach the API server, once recorded. */
  up(chunk: Buffer): Promise<Buffer>;
  /** API server bytes → what may reach the client (recorded as it passes). */
  down(chunk: Buffer): Buffer;
}

/** A head the API server has not finished within this many bytes is not an HTTP answer Agate relays. */
const MAX_RESPONSE_HEAD = 64 * 1024;

/**
 * Relays an upgraded connection (exec, attach, port-forward over WebSocket or SPDY) after its
 * request was decided: opens TLS to the API server, sends `requestHead` (the engine rebuilt it
 * without the client's token, with Agate's credential) and reads the answer's head. Only a
 * `101 Switching Protocols` opens the pipe both ways (with backpressure, counting bytes each way
 * and hashing what the server sent). Until then not one client byte is sent: Agate's credential
 * holds for the whole TLS connection (a client certificate authenticates every request on it), so
 * a byte of the client's reaching a connection the API server still reads as HTTP would be a
 * second request nobody decided or recorded. Any other answer is delivered and both connections
 * closed. Resolves when both sides are closed.
 */
export function relayUpgrade(client: Socket, head: Buffer, requestHead: string, upstream: KubeUpstream, tap?: StreamTap): Promise<UpgradeOutcome> {
  const host = upstream.server.hostname;
  const port = Number(upstream.server.port || 443);
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const server = connect({ host, port, ...upstream.tls, servername: upstream.tls.servername ?? (isIP(host) === 0 ? host : undefined), rejectUnauthorized: true, ALPNProtocols: ['http/1.1'] });
    let connected = false;
    let bytesUp = 0;
    let bytesDown = 0;
    let statusLine = '';
    let failed: { code: string; message: string } | undefined;
    const hash = createHash('sha256');
    // Nothing the client sends is read before the API server switched protocols.
    client.pause();
    server.once('error', (error) => {
      if (!connected) return resolve({ kind: 'unreachable', error });
      client.destroy();
    });
    let open = 2;
    const closed = () => {
      if (--open > 0) return;
      const code = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
      resolve({ kind: 'relayed', code, statusLine: statusLine.slice(0, 120), bytesUp, bytesDown, digest: bytesDown === 0 ? null : `sha256:${hash.digest('hex')}`, durationUs: Number((process.hrtime.bigint() - started) / 1000n), ...(failed === undefined ? {} : { failed }) });
    };
    const down = (chunk: Buffer) => {
      bytesDown += chunk.length;
      hash.update(chunk);
      client.write(chunk);
    };
    server.once('secureConnect', () => {
      connected = true;
      client.once('close', () => {
        server.destroy();
        closed();
      });
      server.once('close', () => {
        // A non-101 answer was written to the client: it is flushed before the end.
        if (answered) client.end(() => client.destroy());
        else client.destroy();
        closed();
      });
      let answered = false;
      let answer = Buffer.alloc(0);
      let body: BodyEnd | undefined;
      const onHead = (chunk: Buffer) => {
        if (body !== undefined) {
          // Not switched: the answer's body, then both connections end.
          down(chunk);
          if (body.done(chunk)) finish();
          return;
        }
        answer = Buffer.concat([answer, chunk]);
        const end = answer.indexOf('\r\n\r\n');
        if (end < 0) {
          if (answer.length > MAX_RESPONSE_HEAD) finish();
          return;
        }
        const headText = answer.subarray(0, end).toString('latin1');
        statusLine = headText.split('\r\n')[0] ?? '';
        const rest = answer.subarray(end + 4);
        if (/^HTTP\/1\.[01] 101 /.test(statusLine)) {
          server.off('data', onHead);
          if (tap === undefined) {
            down(answer);
            return switchProtocols();
          }
          const refused = tap.accept(headText);
          if (refused !== undefined) return fail(refused);
          down(answer.subarray(0, end + 4));
          return readBoth(rest);
        }
        body = bodyEnd(headText);
        down(answer);
        if (body.done(rest)) finish();
      };
      const finish = () => {
        answered = true;
        server.off('data', onHead);
        server.destroy(); // its close ends the client once the answer is flushed
      };
      const switchProtocols = () => {
        if (head.length > 0) {
          bytesUp += head.length;
          server.write(head);
        }
        client.on('data', (chunk: Buffer) => (bytesUp += chunk.length));
        server.on('data', (chunk: Buffer) => {
          bytesDown += chunk.length;
          hash.update(chunk);
        });
        client.pipe(server);
        server.pipe(client);
        client.resume();
      };
      /** Ends both connections: nothing more passes either way. */
      const fail = (why: unknown) => {
        failed ??= typeof why === 'string' ? { code: ErrorCode.PROTOCOL_VIOLATION, message: why } : { code: why instanceof AgateError ? why.code : ErrorCode.PROTOCOL_VIOLATION, message: why instanceof AgateError ? why.message : describeError(why) };
        client.destroy();
        server.destroy();
      };
      /**
       * The tapped relay: each side's bytes go through the tap; the client is read only once
       * what it sent before is recorded and written, and each side is paused while the other
       * cannot take more.
       */
      const readBoth = (rest: Buffer) => {
        const fromServer = (chunk: Buffer) => {
          let out: Buffer;
          try {
            out = tap!.down(chunk);
          } catch (err) {
            return fail(err);
          }
          if (out.length === 0) return;
          down(out);
          if (client.writableNeedDrain) {
            server.pause();
            client.once('drain', () => server.resume());
          }
        };
        const fromClient = (chunk: Buffer) => {
          client.pause();
          bytesUp += chunk.length;
          tap!.up(chunk).then((out) => {
            if (failed !== undefined || server.destroyed) return;
            if (out.length === 0 || server.write(out)) client.resume();
            else server.once('drain', () => client.resume());
          }, (err: unknown) => fail(err));
        };
        if (rest.length > 0) fromServer(rest);
        server.on('data', fromServer);
        client.on('data', fromClient);
        if (head.length > 0) fromClient(head);
        else client.resume();
      };
      server.on('data', onHead);
      server.write(requestHead);
    });
  });
}

/** Tells when a (non-101) answer's body is complete, from its head. */
interface BodyEnd {
  /** Takes the next bytes of the body; true once it is complete. */
  done(chunk: Buffer): boolean;
}

function bodyEnd(headText: string): BodyEnd {
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
  if (length !== null) {
    let left = Number(length[1]);
    return { done: (chunk) => (left -= chunk.length) <= 0 };
  }
  if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(headText)) {
    // The last chunk: `0` then an empty trailer. Seen across chunk boundaries by keeping a tail.
    let tail = '';
    return {
      done: (chunk) => {
        tail = (tail + chunk.toString('latin1')).slice(-16);
        return /(^|\r\n)0\r\n\r\n$/.test(tail);
      },
    };
  }
  // No length: the body ends when the server closes.
  return { done: () => false };
}
