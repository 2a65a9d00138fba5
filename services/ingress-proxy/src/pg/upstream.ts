import { connect, type Socket } from 'node:net';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { AgateError, ErrorCode, ProtocolError } from '../../../../core/src/errors.js';
import { BackendFrameReader, type BackendFrame } from './backend-frames.js';
import { md5Password, ScramSha256Client } from './upstream-auth.js';
import { startUpstreamTls, type UpstreamTls } from './upstream-tls.js';
import { onChunks, UpstreamReads } from './upstream-reads.js';

export interface UpstreamTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /** The mask set for everything this target's clients receive, if any. */
  maskClient?: string;
  /** TLS to the server; absent means clear text. */
  tls?: UpstreamTls;
}

/** What the server said about itself during startup, relayed to the client. */
interface UpstreamReady {
  parameters: [string, string][];
  processId: number;
  secretKey: number;
}

const CONNECT_TIMEOUT_MS = 10_000;

type AuthMessage = BackendMessage & { salt?: Buffer; mechanisms?: string[]; data?: string; message?: string; code?: string; parameterName?: string; parameterValue?: string; processID?: number; secretKey?: number; status?: string };

/** Decodes one complete backend frame with pg-protocol's parser. */
function decodeFrame(parser: Parser, frame: Buffer): AuthMessage {
  let out: AuthMessage | undefined;
  parser.parse(frame, (m) => (out = m as AuthMessage));
  if (out === undefined) throw new ProtocolError('upstream frame did not decode');
  return out;
}

/**
 * Opens an authenticated connection to the real PostgreSQL server with the credential Agate
 * holds (cleartext, md5 or SCRAM-SHA-256, whichever the server asks for) and waits until it is
 * ready for queries. Errors never contain the credential.
 *
 * `reuseReads`: a clear-text socket is read into one reused buffer (upstream-reads.ts); its chunks
 * then come through the returned `reads` (see `onChunks`), never as 'data' events.
 */
export async function connectUpstream(
  target: UpstreamTarget,
  startupParams: Record<string, string>,
  maxMessageSize: number,
  options: { reuseReads?: boolean } = {},
): Promise<{ socket: Socket; reads: UpstreamReads | undefined; ready: UpstreamReady; leftover: Buffer[] }> {
  const tls = target.tls !== undefined && target.tls.mode !== 'disable';
  // TLS reads the raw socket itself; the reused read buffer is for clear text only.
  const reads = options.reuseReads === true && !tls ? new UpstreamReads() : undefined;
  let socket: Socket = connect({ host: target.host, port: target.port, ...(reads === undefined ? {} : { onread: reads.options }) });
  socket.setNoDelay(true);
  const where = `${target.host}:${target.port}`;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      socket.once('connect', () => (clearTimeout(timer), resolve()));
      socket.once('error', (e) => (clearTimeout(timer), reject(e)));
    });
  } catch (cause) {
    socket.destroy();
    throw new AgateError(ErrorCode.UPSTREAM_UNREACHABLE, `cannot connect to ${where}: ${(cause as Error).message}`, { cause, retriable: true });
  }
  try {
    if (tls) socket = await startUpstreamTls(socket, target.host, target.tls!);
    const result = await handshake(socket, reads, target, startupParams, maxMessageSize);
    return { socket, reads, ...result };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

function handshake(socket: Socket, reads: UpstreamReads | undefined, target: UpstreamTarget, startupParams: Record<string, string>, maxMessageSize: number): Promise<{ ready: UpstreamReady; leftover: Buffer[] }> {
  return new Promise((resolve, reject) => {
    const parser = new Parser();
    const parameters: [string, string][] = [];
    let key = { processId: 0, secretKey: 0 };
    let scram: ScramSha256Client | undefined;
    let done = false;
    const leftover: Buffer[] = [];
    const fail = (err: Error) => {
      if (done) return;
      done = true;
      cleanup();
      reject(err);
    };
    const authFailed = (msg: string) => fail(new AgateError(ErrorCode.UPSTREAM_AUTH_FAILED, `the target refused Agate's credential: ${msg}`));
    const onFrame = (frame: BackendFrame) => {
      if (done) return void leftover.push(Buffer.from(frame.raw));
      const m = decodeFrame(parser, frame.raw);
      switch (m.name) {
        case 'authenticationOk':
          return;
        case 'authenticationCleartextPassword':
          return void socket.write(serialize.password(target.password));
        case 'authenticationMD5Password':
          return void socket.write(serialize.password(md5Password(target.user, target.password, m.salt!)));
        case 'authenticationSASL':
          if (!m.mechanisms?.includes(ScramSha256Client.mechanism)) {
            return fail(new AgateError(ErrorCode.UPSTREAM_AUTH_UNSUPPORTED, `the target offers SASL mechanisms ${m.mechanisms?.join(', ')}; Agate speaks SCRAM-SHA-256`));
          }
          scram = new ScramSha256Client(target.password);
          return void socket.write(serialize.sendSASLInitialResponseMessage(scram.mechanism, scram.clientFirst()));
        case 'authenticationSASLContinue':
          if (scram === undefined) return fail(new ProtocolError('upstream sent SASLContinue before SASL'));
          return void scram.clientFinal(m.data!).then((final) => socket.write(serialize.sendSCRAMClientFinalMessage(final)), fail);
        case 'authenticationSASLFinal':
          try {
            scram?.verifyServerFinal(m.data!);
          } catch (err) {
            fail(err as Error);
          }
          return;
        case 'parameterStatus':
          return void parameters.push([m.parameterName!, m.parameterValue!]);
        case 'backendKeyData':
          key = { processId: m.processID!, secretKey: m.secretKey! };
          return;
        case 'notice':
          return;
        case 'error':
          return m.code === '28P01' || m.code === '28000' ? authFailed(m.message ?? 'authentication failed') : fail(new AgateError(ErrorCode.UPSTREAM_UNREACHABLE, `the target refused the session: ${m.code} ${m.message}`));
        case 'readyForQuery':
          done = true;
          cleanup();
          return resolve({ ready: { parameters, ...key }, leftover });
        default:
          return fail(new AgateError(ErrorCode.UPSTREAM_AUTH_UNSUPPORTED, `unexpected ${m.name} from the target during startup`));
      }
    };
    const reader = new BackendFrameReader(onFrame, maxMessageSize);
    const onData = (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        fail(err as Error);
      }
    };
    const onClose = () => fail(new AgateError(ErrorCode.UPSTREAM_UNREACHABLE, 'the target closed the connection during startup', { retriable: true }));
    const onError = (e: Error) => fail(new AgateError(ErrorCode.UPSTREAM_UNREACHABLE, `connection to the target failed: ${e.message}`, { cause: e, retriable: true }));
    const timer = setTimeout(() => fail(new AgateError(ErrorCode.UPSTREAM_UNREACHABLE, 'the target did not finish startup in time', { retriable: true })), CONNECT_TIMEOUT_MS);
    function cleanup() {
      clearTimeout(timer);
      socket.pause(); // nothing may flow until the session attaches its own reader
      offChunks();
      socket.off('close', onClose);
      socket.off('error', onError);
    }
    const offChunks = onChunks(socket, reads, onData);
    socket.on('close', onClose);
    socket.on('error', onError);
    socket.write(serialize.startup({ ...startupParams, user: target.user, database: target.database }));
  });
}
