import { ProtocolError } from '../../../../core/src/errors.js';
import { BufferReader } from './buffer-reader.js';
import type { PasswordMessage } from './messages.js';

/**
 * Decoders for the body of a 'p' message. The type byte is shared by PasswordMessage,
 * SASLInitialResponse and SASLResponse (and GSSResponse); which one a client sent is known only
 * from the authentication request the server made, so the parser keeps the body raw and the
 * authentication code picks the decoder here.
 */

/** After AuthenticationCleartextPassword or AuthenticationMD5Password: one NUL-terminated string. */
export function decodePassword(msg: PasswordMessage): string {
  const r = new BufferReader(msg.body);
  const password = r.cstring();
  // Never echo the body: it is a credential.
  if (r.remaining !== 0) throw new ProtocolError('invalid password message: trailing bytes');
  return password;
}

/** The first SASL message: mechanism name, then Int32 length and data (-1 means no data). */
interface SASLInitialResponse {
  mechanism: string;
  data: Buffer | null;
}

/** After AuthenticationSASL: decodes SASLInitialResponse. */
export function decodeSASLInitialResponse(msg: PasswordMessage): SASLInitialResponse {
  const r = new BufferReader(msg.body);
  const mechanism = r.cstring();
  const len = r.int32();
  if (len < -1) throw new ProtocolError(`invalid SASL initial response length ${len}`);
  const data = len === -1 ? null : r.bytes(len);
  if (r.remaining !== 0) throw new ProtocolError('invalid SASL initial response: trailing bytes');
  return { mechanism, data };
}

/** After AuthenticationSASLContinue: the whole body is mechanism data. */
export function decodeSASLResponse(msg: PasswordMessage): Buffer {
  return msg.body;
}
