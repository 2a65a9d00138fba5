import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { serialize } from './backend-serializer.js';

/**
 * Answers an SSLRequest. Without a configured certificate: 'N', and the client goes on in clear
 * (or gives up, with sslmode=require). With one: 'S', then the TLS handshake runs over the same
 * socket and every later byte, the StartupMessage included, is read from the returned socket.
 * The caller must stop reading `raw` itself; the frontend parser has already checked that no
 * plaintext was queued behind the request.
 */
export function answerSslRequest(raw: Socket, context: SecureContext | undefined): TLSSocket | undefined {
  if (context === undefined) {
    raw.write(serialize.sslRefused());
    return undefined;
  }
  raw.removeAllListeners('data');
  raw.write(serialize.sslAccepted());
  const secure = new TLSSocket(raw, { isServer: true, secureContext: context });
  secure.setNoDelay(true);
  return secure;
}
