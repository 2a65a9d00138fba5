import { MASKED_VALUE, type Masker } from '../../masking/masker.js';
import { MaskingError } from './data-row.js';

/**
 * A FunctionCallResponse on its way to the client. The value has no column name, so a column
 * rule can only meet it under the function's own name; a statement masked whole (the function
 * returns a table's columns, derived-columns.ts) masks it whatever the name. Other values pass
 * unchanged (large-object reads and writes are the common use).
 *
 * Wire layout: 'V', Int32 length, Int32 value length (-1: NULL), value bytes.
 */
export function maskFunctionResult(frame: Buffer, masker: Masker, functionName: string): { frame: Buffer; masked: number } {
  if (frame.length < 9) throw new MaskingError('a FunctionCallResponse shorter than its header');
  const length = frame.readInt32BE(5);
  if (length !== -1 && (length < 0 || 9 + length !== frame.length)) throw new MaskingError('a FunctionCallResponse whose value length does not match its frame');
  if (length === -1 || !masker.masksColumn(functionName)) return { frame, masked: 0 };
  const value = Buffer.from(MASKED_VALUE, 'utf8');
  const out = Buffer.alloc(9 + value.length);
  out[0] = 0x56; // V
  out.writeInt32BE(8 + value.length, 1);
  out.writeInt32BE(value.length, 5);
  value.copy(out, 9);
  return { frame: out, masked: 1 };
}
