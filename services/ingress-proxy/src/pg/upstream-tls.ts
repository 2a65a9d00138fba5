import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { AgateError, ErrorCode } from '../../../../core/src/errors.js';

/** How Agate secures its connection to a target, like libpq's sslmode. */
export interface UpstreamTls {
  mode: 'disable' | 'require' | 'verify-full';
  /** PEM file of the CA to trust (verify-full); default: the system's trust store. */
  ca?: string;
}

// SSLRequest: Int32 8 | Int32 80877103
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

/**
 * Asks the server for TLS (SSLRequest), then runs the handshake over the same socket:
 * `require` encrypts without checking the certificate; `verify-full` checks the chain against
 * `ca` and the certificate's names against the host. A server that answers 'N' is refused:
 * Agate never falls back to clear text when TLS was configured.
 */
export async function startUpstreamTls(socket: Socket, host: string, tls: UpstreamTls): Promise<TLSSocket> {
  const answer = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      cleanup();
      // The answer is one byte; anything more would be injected plaintext (CVE-2021-23222).
      if (chunk.length !== 1) return reject(new AgateError(ErrorCode.PROTOCOL_VIOLATION, 'the target sent unexpected data after SSLRequest'));
      resolve(chunk[0]!);
    };
    const onError = (e: Error) => (cleanup(), reject(e));
    const cleanup = () => (socket.off('data', onData), socket.off('error', onError));
    socket.on('data', onData);
    socket.on('error', onError);
    socket.write(SSL_REQUEST);
  });
  socket.pause();
  if (answer !== 0x53 /* S */) {
    throw new AgateError(ErrorCode.UPSTREAM_UNREACHABLE, 'the target does not accept TLS, which this target requires');
  }
  const verify = tls.mode === 'verify-full';
  const secure = tlsConnect({
    socket,
    servername: /^[\d.:]+$/.test(host) ? undefined : host,
    host,
    rejectUnauthorized: verify,
    ca: verify && tls.ca !== undefined ? readFileSync(tls.ca) : undefined,
  });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', () => resolve());
    secure.once('error', (e) => reject(new AgateError(ErrorCode.UPSTREAM_UNREACHABLE, `TLS to the target failed: ${e.message}`, { cause: e })));
  });
  return secure;
}
