import { BufferReader } from '../buffer-reader.js';
import { BufferWriter } from '../buffer-writer.js';
import { MaskingError } from './data-row.js';
import { MASKED_VALUE, type Masker } from '../../masking/masker.js';

/**
 * Fields of an ErrorResponse / NoticeResponse that are protocol metadata, never echoed data:
 * severity (S, V), SQLSTATE (C), positions (P, p), and the server's source location (F, L, R).
 * Every other field (message, detail, hint, context, internal query, object names) may quote a
 * value the statement touched — `invalid input syntax for type integer: "<value>"`,
 * `Key (token)=(<value>) already exists.` — and goes through the masker; a row or key the
 * detail quotes is masked by column name too ({@link maskQuotedRow}).
 */
const METADATA = new Set([0x53, 0x56, 0x43, 0x50, 0x70, 0x46, 0x4c, 0x52]);

/** The detail field ('D'), where the server quotes whole rows and keys. */
const DETAIL = 0x44;

/** A whole row the server quotes: `Failing row contains (<every column of the table>).` */
const FAILING_ROW = /^(Failing row contains )\(.*\)(\.?)$/s;

/** The column list of a key the server quotes: `Key (<columns>)=(<values>) …`. */
const KEY_COLUMNS = /\(([^=]*?)\)=\(/g;

/** An identifier in a column list or index expression, plain or quoted. */
const IDENTIFIER = /"((?:[^"]|"")*)"|([\p{L}_][\p{L}\p{N}_$]*)/gu;

/**
 * A detail quoting the values of columns the statement never named: the row a constraint
 * refused (`UPDATE t SET id = NULL` answers `Failing row contains (null, <secret>)`) or a key
 * over a masked column. Column rules cannot see them by name, so, for a mask set with column
 * rules, the row is masked whole, and so is a key's detail when any name in it is masked.
 */
function maskQuotedRow(detail: string, masker: Masker): string | undefined {
  if (!masker.hasColumnRules) return undefined;
  if (FAILING_ROW.test(detail)) return detail.replace(FAILING_ROW, `$1(${MASKED_VALUE})$2`);
  for (const [, columns] of detail.matchAll(KEY_COLUMNS)) {
    for (const [, quoted, plain] of columns!.matchAll(IDENTIFIER)) {
      if (masker.masksColumn(quoted === undefined ? plain! : quoted.replaceAll('""', '"'))) return MASKED_VALUE;
    }
  }
  return undefined;
}

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
      const row = type === DETAIL ? maskQuotedRow(value, masker) : undefined;
      if (METADATA.has(type)) fields.push([type, value]);
      else if (row !== undefined) {
        masked += 1;
        fields.push([type, row]);
      } else {
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
