/**
 * Frontend (client -> server) messages of PostgreSQL protocol 3.0, as received by the proxy.
 * Every message keeps `raw`, its complete frame (type byte and length included), so the proxy
 * can forward it upstream byte for byte after inspecting it.
 */

/** Type bytes of typed frontend messages (protocol docs §55.7). */
export const enum FrontendCode {
  Bind = 0x42, // B
  Close = 0x43, // C
  Describe = 0x44, // D
  Execute = 0x45, // E
  FunctionCall = 0x46, // F
  Flush = 0x48, // H
  Parse = 0x50, // P
  Query = 0x51, // Q
  Sync = 0x53, // S
  Terminate = 0x58, // X
  CopyDone = 0x63, // c
  CopyData = 0x64, // d
  CopyFail = 0x66, // f
  PasswordMessage = 0x70, // p (also SASLInitialResponse, SASLResponse, GSSResponse)
}

/** Type bytes of the backend (server) messages: those backend-serializer writes and those replies.ts follows. */
export const enum BackendCode {
  ParseComplete = 0x31, // 1
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  NotificationResponse = 0x41, // A
  CommandComplete = 0x43, // C
  DataRow = 0x44, // D
  ErrorResponse = 0x45, // E
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  EmptyQueryResponse = 0x49, // I
  BackendKeyData = 0x4b, // K
  NoticeResponse = 0x4e, // N
  Authentication = 0x52, // R
  ParameterStatus = 0x53, // S
  RowDescription = 0x54, // T
  FunctionCallResponse = 0x56, // V
  CopyBothResponse = 0x57, // W
  ReadyForQuery = 0x5a, // Z
  CopyDone = 0x63, // c
  CopyData = 0x64, // d
  NoData = 0x6e, // n
  PortalSuspended = 0x73, // s
  ParameterDescription = 0x74, // t
  NegotiateProtocolVersion = 0x76, // v
}

/** Request codes of untyped startup-phase packets (the Int32 after the length). */
export const enum StartupCode {
  CancelRequest = 80877102, // 1234 << 16 | 5678
  SSLRequest = 80877103, // 1234 << 16 | 5679
  GSSENCRequest = 80877104, // 1234 << 16 | 5680
  /** Protocol 3.0; the major version is the high 16 bits, the minor the low 16. */
  Protocol3 = 196608,
}

interface Framed {
  /** The whole frame as received. */
  raw: Buffer;
}

// Startup phase: untyped packets (Int32 length, Int32 code, body).
interface SSLRequest extends Framed { type: 'sslRequest' }
interface GSSENCRequest extends Framed { type: 'gssEncRequest' }
export interface CancelRequest extends Framed { type: 'cancelRequest'; processId: number; secretKey: number }
export interface StartupMessage extends Framed {
  type: 'startup';
  /** e.g. 196608 for 3.0. */
  protocolVersion: number;
  /** user, database, options, application_name, ... (a null-prototype object). */
  parameters: Record<string, string>;
}

// Typed phase: 1 type byte, Int32 length, body.
export interface Query extends Framed { type: 'query'; text: string }
interface Terminate extends Framed { type: 'terminate' }
/** Body kept raw: 'p' carries a password, a SASL initial response or a SASL response, and only the auth state tells which. See password-message.ts. */
export interface PasswordMessage extends Framed { type: 'password'; body: Buffer }
export interface Parse extends Framed { type: 'parse'; name: string; query: string; paramTypes: number[] }
export interface Bind extends Framed {
  type: 'bind';
  portal: string;
  statement: string;
  paramFormats: number[];
  /** null is SQL NULL. */
  params: (Buffer | null)[];
  resultFormats: number[];
}
export interface Describe extends Framed { type: 'describe'; kind: 'S' | 'P'; name: string }
export interface Execute extends Framed { type: 'execute'; portal: string; maxRows: number }
export interface Close extends Framed { type: 'close'; kind: 'S' | 'P'; name: string }
interface Sync extends Framed { type: 'sync' }
interface Flush extends Framed { type: 'flush' }
export interface FunctionCall extends Framed {
  type: 'functionCall';
  oid: number;
  argFormats: number[];
  args: (Buffer | null)[];
  resultFormat: number;
}
interface CopyData extends Framed { type: 'copyData'; data: Buffer }
interface CopyDone extends Framed { type: 'copyDone' }
interface CopyFail extends Framed { type: 'copyFail'; message: string }

/** Packets that may arrive before the StartupMessage. */
export type StartupPacket = SSLRequest | GSSENCRequest | CancelRequest | StartupMessage;

/** Messages that follow the StartupMessage. */
export type TypedMessage =
  | Query | Terminate | PasswordMessage | Parse | Bind | Describe | Execute | Close
  | Sync | Flush | FunctionCall | CopyData | CopyDone | CopyFail;

/** Anything the FrontendParser can emit. */
export type FrontendMessage = StartupPacket | TypedMessage;
