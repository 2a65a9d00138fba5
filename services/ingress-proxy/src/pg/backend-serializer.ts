import { ProtocolError } from '../../../../core/src/errors.js';
import { BufferWriter } from './buffer-writer.js';
import { BackendCode } from './messages.js';

/** Backend (server -> client) messages the proxy writes itself. Every call returns a fresh Buffer. */

type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'INFO' | 'LOG' | 'DEBUG';

/** ErrorResponse / NoticeResponse fields (protocol docs §55.8). */
interface ErrorFields {
  severity: Severity;
  /** Five-character SQLSTATE, e.g. '28P01'. */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  /** 1-based character index into the query text. */
  position?: number | string;
  internalPosition?: number | string;
  internalQuery?: string;
  where?: string;
  schema?: string;
  table?: string;
  column?: string;
  dataType?: string;
  constraint?: string;
  file?: string;
  line?: number | string;
  routine?: string;
}

/** Field type letters for the optional fields, in the order the server emits them. */
const OPTIONAL_FIELDS: [keyof ErrorFields, string][] = [
  ['detail', 'D'], ['hint', 'H'], ['position', 'P'], ['internalPosition', 'p'], ['internalQuery', 'q'],
  ['where', 'W'], ['schema', 's'], ['table', 't'], ['column', 'c'], ['dataType', 'd'],
  ['constraint', 'n'], ['file', 'F'], ['line', 'L'], ['routine', 'R'],
];

/** One column of a RowDescription. Omitted: no table (0), variable size (-1), no modifier (-1), text format (0). */
interface FieldDescription {
  name: string;
  tableOid?: number;
  columnAttr?: number;
  typeOid: number;
  typeSize?: number;
  typeModifier?: number;
  format?: 0 | 1;
}

type Status = 'I' | 'T' | 'E';

const empty = (code: BackendCode): Buffer => new BufferWriter(5).flush(code);

/** Authentication request 'R': Int32 sub-code, then any payload. */
const auth = (kind: number, payload?: Uint8Array): Buffer => {
  const w = new BufferWriter().addInt32(kind);
  if (payload) w.addBytes(payload);
  return w.flush(BackendCode.Authentication);
};

const toBytes = (data: Buffer | string): Buffer => (typeof data === 'string' ? Buffer.from(data, 'utf8') : data);

const noticeOrError = (code: BackendCode, fields: ErrorFields): Buffer => {
  if (!/^[0-9A-Z]{5}$/.test(fields.code)) throw new ProtocolError(`invalid SQLSTATE '${fields.code}'`);
  // S may be localized, V (since 9.6) never is; the proxy writes English, so both are the same.
  const w = new BufferWriter()
    .addByte(0x53).addCString(fields.severity)
    .addByte(0x56).addCString(fields.severity)
    .addByte(0x43).addCString(fields.code)
    .addByte(0x4d).addCString(fields.message);
  for (const [key, letter] of OPTIONAL_FIELDS) {
    const value = fields[key];
    if (value !== undefined) w.addByte(letter.charCodeAt(0)).addCString(String(value));
  }
  return w.addByte(0).flush(code); // a zero byte ends the field list
};

const serialize = {
  authenticationOk: (): Buffer => auth(0),
  authenticationCleartextPassword: (): Buffer => auth(3),
  /** `salt` must be the 4 random bytes the client mixes into its MD5 hash. */
  authenticationMD5Password: (salt: Buffer): Buffer => {
    if (salt.length !== 4) throw new ProtocolError('MD5 salt must be 4 bytes');
    return auth(5, salt);
  },
  /** Mechanism names, each NUL-terminated, then an empty name ending the list. */
  authenticationSASL: (mechanisms: string[]): Buffer => {
    const w = new BufferWriter().addInt32(10);
    for (const m of mechanisms) w.addCString(m);
    return w.addByte(0).flush(BackendCode.Authentication);
  },
  authenticationSASLContinue: (data: Buffer | string): Buffer => auth(11, toBytes(data)),
  authenticationSASLFinal: (data: Buffer | string): Buffer => auth(12, toBytes(data)),
  parameterStatus: (name: string, value: string): Buffer =>
    new BufferWriter().addCString(name).addCString(value).flush(BackendCode.ParameterStatus),
  /** The newest minor version of protocol 3 spoken, and the `_pq_.` options not taken, each NUL-terminated. */
  negotiateProtocolVersion: (minor: number, options: readonly string[]): Buffer => {
    const w = new BufferWriter().addInt32((3 << 16) | minor).addInt32(options.length);
    for (const o of options) w.addCString(o);
    return w.flush(BackendCode.NegotiateProtocolVersion);
  },
  backendKeyData: (processId: number, secretKey: number): Buffer =>
    new BufferWriter(13).addInt32(processId).addInt32(secretKey).flush(BackendCode.BackendKeyData),
  /** 'I' idle, 'T' in a transaction block, 'E' in a failed transaction block. */
  readyForQuery: (status: Status): Buffer =>
    new BufferWriter(6).addByte(status.charCodeAt(0)).flush(BackendCode.ReadyForQuery),
  errorResponse: (fields: ErrorFields): Buffer => noticeOrError(BackendCode.ErrorResponse, fields),
  noticeResponse: (fields: ErrorFields): Buffer => noticeOrError(BackendCode.NoticeResponse, fields),
  /** `tag` such as 'SELECT 1' or 'INSERT 0 3'. */
  commandComplete: (tag: string): Buffer => new BufferWriter().addCString(tag).flush(BackendCode.CommandComplete),
  emptyQueryResponse: (): Buffer => empty(BackendCode.EmptyQueryResponse),
  rowDescription: (fields: FieldDescription[]): Buffer => {
    const w = new BufferWriter().addInt16(fields.length);
    for (const f of fields) {
      w.addCString(f.name).addInt32(f.tableOid ?? 0).addInt16(f.columnAttr ?? 0).addInt32(f.typeOid)
        .addInt16(f.typeSize ?? -1).addInt32(f.typeModifier ?? -1).addInt16(f.format ?? 0);
    }
    return w.flush(BackendCode.RowDescription);
  },
  /** Each value is length-prefixed; null is written as length -1 (SQL NULL). */
  dataRow: (values: (Buffer | null)[]): Buffer => {
    const w = new BufferWriter().addInt16(values.length);
    for (const v of values) {
      if (v === null) w.addInt32(-1);
      else w.addInt32(v.length).addBytes(v);
    }
    return w.flush(BackendCode.DataRow);
  },
  parseComplete: (): Buffer => empty(BackendCode.ParseComplete),
  bindComplete: (): Buffer => empty(BackendCode.BindComplete),
  closeComplete: (): Buffer => empty(BackendCode.CloseComplete),
  noData: (): Buffer => empty(BackendCode.NoData),
  portalSuspended: (): Buffer => empty(BackendCode.PortalSuspended),
  /** Answers to SSLRequest (and 'N' to GSSENCRequest): a single unframed byte. */
  sslRefused: (): Buffer => Buffer.from('N'),
  sslAccepted: (): Buffer => Buffer.from('S'),
};

export { serialize };
