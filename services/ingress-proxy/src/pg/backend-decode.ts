import { BufferReader } from './buffer-reader.js';

/**
 * Decoders for the few backend messages the proxy reads rather than just forwards. Each takes
 * one complete frame (type byte and length included) and throws ProtocolError on a short one.
 */

/** One column of a RowDescription ('T'). */
export interface Column {
  name: string;
  tableOid: number;
  columnAttr: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  /** 0 text, 1 binary. */
  format: number;
}

// 'T' | Int32 len | Int16 n | n × (String name, Int32 table, Int16 attr, Int32 type, Int16 size, Int32 typmod, Int16 format)
export function decodeRowDescription(frame: Buffer): Column[] {
  const r = new BufferReader(frame, 5);
  const n = r.uint16();
  const out: Column[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ name: r.cstring(), tableOid: r.uint32(), columnAttr: r.int16(), typeOid: r.uint32(), typeSize: r.int16(), typeModifier: r.int32(), format: r.int16() });
  }
  return out;
}

// 't' | Int32 len | Int16 n | n × Int32 type oid
export function decodeParameterDescription(frame: Buffer): number[] {
  const r = new BufferReader(frame, 5);
  const n = r.uint16();
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(r.uint32());
  return out;
}

// 'D' | Int32 len | Int16 n | n × (Int32 len or -1 for NULL, bytes)
export function decodeDataRow(frame: Buffer): (Buffer | null)[] {
  const r = new BufferReader(frame, 5);
  const n = r.uint16();
  const out: (Buffer | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    out.push(len === -1 ? null : r.bytes(len));
  }
  return out;
}

// 'C' | Int32 len | String tag
export function decodeCommandComplete(frame: Buffer): string {
  return new BufferReader(frame, 5).cstring();
}

/** The fields of an ErrorResponse ('E') or NoticeResponse ('N') the audit trail keeps. */
interface ErrorSummary {
  severity: string;
  code: string;
  message: string;
}

// 'E' | Int32 len | { Byte1 field type, String value } … | Byte1 0
export function decodeErrorResponse(frame: Buffer): ErrorSummary {
  const r = new BufferReader(frame, 5);
  const out: ErrorSummary = { severity: '', code: '', message: '' };
  for (let type = r.byte(); type !== 0; type = r.byte()) {
    const value = r.cstring();
    if (type === 0x56 /* V */ || (type === 0x53 /* S */ && out.severity === '')) out.severity = value;
    else if (type === 0x43 /* C */) out.code = value;
    else if (type === 0x4d /* M */) out.message = value;
  }
  return out;
}

// 'S' | Int32 len | String name | String value
export function decodeParameterStatus(frame: Buffer): { name: string; value: string } {
  const r = new BufferReader(frame, 5);
  return { name: r.cstring(), value: r.cstring() };
}
