import { ErrorCode, ProtocolError } from '../../../../core/src/errors.js';
import { BufferReader } from './buffer-reader.js';
import { FrontendCode, StartupCode, type StartupPacket, type TypedMessage } from './messages.js';

/**
 * Body decoders for one complete, already-delimited frame. The frame must be a private copy:
 * decoded messages keep views (raw, params, CopyData) into it.
 */

/** Decodes an untyped startup-phase packet (Int32 length, Int32 code, body). */
export function decodeStartupPacket(raw: Buffer): StartupPacket {
  const r = new BufferReader(raw, 4);
  const code = r.int32();
  switch (code) {
    case StartupCode.SSLRequest:
      end(r, 'SSLRequest');
      return { type: 'sslRequest', raw };
    case StartupCode.GSSENCRequest:
      end(r, 'GSSENCRequest');
      return { type: 'gssEncRequest', raw };
    case StartupCode.CancelRequest: {
      const processId = r.int32();
      const secretKey = r.int32();
      end(r, 'CancelRequest');
      return { type: 'cancelRequest', processId, secretKey, raw };
    }
  }
  // Only major version 3 exists today; a newer minor is answered with NegotiateProtocolVersion
  // for 3.0 (session.ts), as the server answers one it does not speak.
  if (code >>> 16 !== 3) {
    throw new ProtocolError(`unsupported frontend protocol ${code >>> 16}.${code & 0xffff}`, ErrorCode.PROTOCOL_UNSUPPORTED);
  }
  // Null prototype: a parameter named "__proto__" must stay plain data.
  const parameters: Record<string, string> = Object.create(null);
  for (;;) {
    const name = r.cstring();
    if (name === '') break; // the list ends with an empty name
    parameters[name] = r.cstring();
  }
  end(r, 'StartupMessage');
  return { type: 'startup', protocolVersion: code, parameters, raw };
}

/** True for the type bytes a client may send after startup. */
export function isFrontendCode(code: number): boolean {
  switch (code) {
    case FrontendCode.Bind: case FrontendCode.Close: case FrontendCode.Describe:
    case FrontendCode.Execute: case FrontendCode.FunctionCall: case FrontendCode.Flush:
    case FrontendCode.Parse: case FrontendCode.Query: case FrontendCode.Sync:
    case FrontendCode.Terminate: case FrontendCode.CopyDone: case FrontendCode.CopyData:
    case FrontendCode.CopyFail: case FrontendCode.PasswordMessage:
      return true;
    default:
      return false;
  }
}

/** Decodes a typed frame (type byte, Int32 length, body) whose type byte passed {@link isFrontendCode}. */
export function decodeTypedMessage(raw: Buffer): TypedMessage {
  const r = new BufferReader(raw, 5);
  const code = raw[0];
  let msg: TypedMessage;
  switch (code) {
    case FrontendCode.Query: msg = { type: 'query', text: r.cstring(), raw }; break;
    case FrontendCode.Terminate: msg = { type: 'terminate', raw }; break;
    case FrontendCode.Sync: msg = { type: 'sync', raw }; break;
    case FrontendCode.Flush: msg = { type: 'flush', raw }; break;
    case FrontendCode.CopyDone: msg = { type: 'copyDone', raw }; break;
    case FrontendCode.PasswordMessage: msg = { type: 'password', body: r.rest(), raw }; break;
    case FrontendCode.CopyData: msg = { type: 'copyData', data: r.rest(), raw }; break;
    case FrontendCode.CopyFail: msg = { type: 'copyFail', message: r.cstring(), raw }; break;
    case FrontendCode.Parse: {
      const name = r.cstring();
      const query = r.cstring();
      msg = { type: 'parse', name, query, paramTypes: list(r, () => r.uint32()), raw };
      break;
    }
    case FrontendCode.Bind: {
      const portal = r.cstring();
      const statement = r.cstring();
      const paramFormats = list(r, () => r.int16());
      const params = list(r, () => value(r));
      msg = { type: 'bind', portal, statement, paramFormats, params, resultFormats: list(r, () => r.int16()), raw };
      break;
    }
    case FrontendCode.Describe: case FrontendCode.Close: {
      const kind = portalOrStatement(r);
      const name = r.cstring();
      msg = code === FrontendCode.Describe ? { type: 'describe', kind, name, raw } : { type: 'close', kind, name, raw };
      break;
    }
    case FrontendCode.Execute: {
      const portal = r.cstring();
      msg = { type: 'execute', portal, maxRows: r.int32(), raw }; // 0 means "no limit"
      break;
    }
    case FrontendCode.FunctionCall: {
      const oid = r.uint32();
      const argFormats = list(r, () => r.int16());
      const args = list(r, () => value(r));
      msg = { type: 'functionCall', oid, argFormats, args, resultFormat: r.int16(), raw };
      break;
    }
    default:
      throw new ProtocolError(`invalid frontend message type 0x${(code ?? 0).toString(16)}`);
  }
  end(r, msg.type);
  return msg;
}

/** An Int16 count followed by that many items; the server reads counts as unsigned. */
function list<T>(r: BufferReader, item: () => T): T[] {
  const n = r.uint16();
  const out = new Array<T>(n);
  for (let i = 0; i < n; i++) out[i] = item();
  return out;
}

/** An Int32 length then that many bytes; -1 is NULL and any other negative length is invalid. */
function value(r: BufferReader): Buffer | null {
  const len = r.int32();
  if (len === -1) return null;
  if (len < 0) throw new ProtocolError(`invalid parameter length ${len}`);
  return r.bytes(len);
}

function portalOrStatement(r: BufferReader): 'S' | 'P' {
  const kind = r.byte();
  if (kind === 0x53) return 'S';
  if (kind === 0x50) return 'P';
  throw new ProtocolError(`invalid Describe/Close target 0x${kind.toString(16)}`);
}

/** Like the server's pq_getmsgend: bytes left over inside a frame mean it was malformed. */
function end(r: BufferReader, what: string): void {
  if (r.remaining !== 0) throw new ProtocolError(`invalid ${what} message: ${r.remaining} trailing bytes`);
}
