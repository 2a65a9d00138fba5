import { BufferReader } from '../buffer-reader.js';
import { BufferWriter } from '../buffer-writer.js';
import { MaskingError } from './data-row.js';
import type { Masker } from '../../masking/masker.js';

/**
 * Fields of an ErrorResponse / NoticeResponse that are protocol metadata, never echoed data:
 * severity (S, V), SQLSTATE (C), positions (P, p), and the server's source location (F, L, R).
 * Every other field (message, detail, hint, context, internal query, object names) may quote a
 * value the statement touched — `invalid input syntax for type integer: "<value>"`,
 * `Key (token)=(<value>) already exists.` — and goes through the masker.
 */
const METADATA = new Set([0x53, 0x56, 0x43, 0x50, 0x70, 0x46, 0x4c, 0x52]);

/**
 * Masks the text fields of one ErrorResponse ('E') or NoticeResponse ('N') frame. Returns the
 * frame itself when nothing was masked. A frame that cannot be read throws {@link MaskingError}:
 * the caller withholds it (fail closed) rather than pass on what it could not check.
 */
export function maskErrorFields(frame: Buffer, masker: Masker): { frame: Buffer; masked: number } {
  // 'E' | 'N', Int32 length, then { Byte1 field type, String value } … terminated by a 0 byte.
  const fields: [number, string][] = [];
  let masked = 0;
  try {
    const r = new BufferReader(frame, 5);
    for (let type = r.byte(); type !== 0; type = r.byte()) {
      const value = r.cstring();
      if (METADATA.has(type)) fields.push([type, value]);
      else {
        const m = masker.maskText(value);
        masked += m.count;
        fields.push([type, m.text]);
      }
    }
  } catch (cause) {
    throw new MaskingError('an error or notice from the target could not be read for masking', { cause });
  }
  if (masked === 0) return { frame, masked };
  const w = new BufferWriter();
  for (const [type, value] of fields) w.addByte(type).addCString(value);
  w.addByte(0);
  return { frame: w.flush(frame[0]!), masked };
}
