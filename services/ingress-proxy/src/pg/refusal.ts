import { BufferWriter } from './buffer-writer.js';
import { FrontendCode } from './messages.js';

/*
 * How Agate refuses a statement without breaking the conversation: instead of the refused
 * message it sends the server a Parse the server must reject (the text is not SQL, the statement
 * name is a named one, so no prepared statement is created or dropped). The server then behaves
 * exactly as after any error — it aborts the transaction (or rolls back the implicit one), skips
 * everything up to Sync and reports the right transaction status — and the reply router swaps
 * its syntax error for Agate's own ErrorResponse. Replies therefore stay in order by
 * construction, pipelined or not.
 */

// 'P' | Int32 len | String name | String query | Int16 0 parameter types
export function refusalParse(): Buffer {
  return new BufferWriter().addCString('agate.refused').addCString('agate refused this statement').addInt16(0).flush(FrontendCode.Parse);
}

// 'S' | Int32 4
export function syncMessage(): Buffer {
  return new BufferWriter(5).flush(FrontendCode.Sync);
}

// 'D' | Int32 len | Byte1 'P' | String portal
export function describePortal(name: string): Buffer {
  return new BufferWriter().addByte(0x50).addCString(name).flush(FrontendCode.Describe);
}
