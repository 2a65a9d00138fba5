import { AgateError, ErrorCode } from '../../../../../core/src/errors.js';
import type { Column } from '../backend-decode.js';
import { decodeDataRow } from '../backend-decode.js';
import { serialize } from '../backend-serializer.js';
import { MASKED_VALUE, type Masker } from '../../masking/masker.js';
import { maskJsonKeys } from './statement-secrets.js';

/** Masking could not be applied safely; the response must be refused, never passed on. */
export class MaskingError extends AgateError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(ErrorCode.MASKING_FAILED, message, options);
  }
}

/** Type OIDs whose binary form is the same UTF-8 text as the text form. */
const TEXT_LIKE = new Set([25 /* text */, 1043 /* varchar */, 1042 /* bpchar */, 19 /* name */, 705 /* unknown */, 142 /* xml */, 114 /* json */]);
const JSONB = 3802;
const JSON_TYPES = new Set([114, JSONB]);
const BYTEA = 17;

/**
 * Reads one value as text for detection: text format always; binary only where the bytes are
 * text (text-like types, jsonb after its version byte) or may hold anything (bytea). Other binary
 * values (numbers, dates, uuids) cannot carry the secrets the detectors look for.
 */
function asText(value: Buffer, column: Column | undefined): { text: string; prefix: Buffer } | undefined {
  if (column === undefined || column.format === 0) return { text: value.toString('utf8'), prefix: EMPTY };
  if (TEXT_LIKE.has(column.typeOid)) return { text: value.toString('utf8'), prefix: EMPTY };
  if (column.typeOid === JSONB && value.length > 0) return { text: value.toString('utf8', 1), prefix: value.subarray(0, 1) };
  if (column.typeOid === BYTEA) return { text: value.toString('latin1'), prefix: EMPTY };
  return undefined;
}
const EMPTY = Buffer.alloc(0);

/** The value a masked column carries: a marker where the type takes text, otherwise NULL. */
function columnReplacement(column: Column): Buffer | null {
  if (JSON_TYPES.has(column.typeOid)) {
    const json = Buffer.from(`"${MASKED_VALUE}"`);
    return column.format === 1 && column.typeOid === JSONB ? Buffer.concat([Buffer.from([1]), json]) : json;
  }
  return TEXT_LIKE.has(column.typeOid) ? Buffer.from(MASKED_VALUE) : null;
}

interface MaskedRow {
  /** The frame to deliver: the original when nothing was masked, else a rebuilt DataRow. */
  frame: Buffer;
  masked: number;
}

/**
 * Applies a mask set inside one DataRow frame and rebuilds the frame (and every length) when a
 * value changed. Column rules need the result's RowDescription; without one, or when the row does
 * not match it, masking cannot be trusted and a MaskingError refuses the response.
 */
export function maskDataRow(frame: Buffer, columns: readonly Column[] | undefined, masker: Masker): MaskedRow {
  let values: (Buffer | null)[];
  try {
    values = decodeDataRow(frame);
  } catch (cause) {
    throw new MaskingError('a DataRow could not be decoded for masking', { cause });
  }
  if (columns === undefined ? masker.hasColumnRules : columns.length !== values.length) {
    throw new MaskingError('a DataRow does not match its RowDescription, so it cannot be masked');
  }
  let masked = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    if (value === null) continue;
    const column = columns?.[i];
    if (column !== undefined && masker.masksColumn(column.name)) {
      values[i] = columnReplacement(column);
      masked += 1;
      continue;
    }
    const text = asText(value, column);
    if (text === undefined) continue;
    // A JSON read of a row (row_to_json, json_agg) carries column names as keys.
    const json = column?.typeOid === BYTEA ? undefined : maskJsonKeys(text.text, masker);
    const detected = masker.maskText(json?.text ?? text.text);
    const result = { text: detected.text, count: detected.count + (json?.count ?? 0) };
    if (result.count === 0) continue;
    masked += result.count;
    const encoding = column?.format === 1 && column.typeOid === BYTEA ? 'latin1' : 'utf8';
    values[i] = Buffer.concat([text.prefix, Buffer.from(result.text, encoding)]);
  }
  return { frame: masked === 0 ? frame : serialize.dataRow(values), masked };
}
