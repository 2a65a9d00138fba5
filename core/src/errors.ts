/**
 * Every error Agate raises carries a stable `code` (tests and callers match on it, never on
 * message text), a `retriable` flag, and the underlying `cause`. All codes live in `ErrorCode`.
 */
export const ErrorCode = {
  // configuration
  CONFIG_INVALID: 'CONFIG_INVALID',
  CONFIG_UNREADABLE: 'CONFIG_UNREADABLE',
  /** A key or secret Agate keeps on disk is not a private regular file, and cannot be made one. */
  SECRET_FILE_UNSAFE: 'SECRET_FILE_UNSAFE',
  // authentication of clients
  AUTH_TOKEN_MALFORMED: 'AUTH_TOKEN_MALFORMED',
  AUTH_TOKEN_EXPIRED: 'AUTH_TOKEN_EXPIRED',
  AUTH_TOKEN_NOT_YET_VALID: 'AUTH_TOKEN_NOT_YET_VALID',
  /** exp − iat (or exp − now without iat) is longer than the issuer's max_token_lifetime_s. */
  AUTH_TOKEN_LIFETIME_TOO_LONG: 'AUTH_TOKEN_LIFETIME_TOO_LONG',
  /** The token header marks an extension critical (`crit`) that Agate does not implement. */
  AUTH_CRIT_UNSUPPORTED: 'AUTH_CRIT_UNSUPPORTED',
  AUTH_ISSUER_UNTRUSTED: 'AUTH_ISSUER_UNTRUSTED',
  AUTH_AUDIENCE_MISMATCH: 'AUTH_AUDIENCE_MISMATCH',
  /** The token was minted for another client of the issuer: its `azp` is not in `allowed_azp`, or it has several audiences and no `azp`. */
  AUTH_AZP_REFUSED: 'AUTH_AZP_REFUSED',
  AUTH_SIGNATURE_INVALID: 'AUTH_SIGNATURE_INVALID',
  AUTH_ALGORITHM_REFUSED: 'AUTH_ALGORITHM_REFUSED',
  AUTH_CLAIM_INVALID: 'AUTH_CLAIM_INVALID',
  AUTH_JWKS_UNAVAILABLE: 'AUTH_JWKS_UNAVAILABLE',
  AUTH_KEY_UNKNOWN: 'AUTH_KEY_UNKNOWN',
  AUTH_KEY_SIGNATURE_INVALID: 'AUTH_KEY_SIGNATURE_INVALID',
  /** The connection did not complete its login within `logins.timeout_ms`. */
  AUTH_TIMEOUT: 'AUTH_TIMEOUT',
  /** Closed before logging in to make room: the listener's `logins.max_pending` was reached. */
  AUTH_EVICTED: 'AUTH_EVICTED',
  /** The source address failed to log in too often; it is refused for a while (`logins.throttle`). */
  AUTH_THROTTLED: 'AUTH_THROTTLED',
  /** A PostgreSQL CancelRequest carried a key Agate issued to no open session: a guess at one. */
  AUTH_CANCEL_KEY_UNKNOWN: 'AUTH_CANCEL_KEY_UNKNOWN',
  // wire protocols
  PROTOCOL_VIOLATION: 'PROTOCOL_VIOLATION',
  PROTOCOL_FRAME_TOO_LARGE: 'PROTOCOL_FRAME_TOO_LARGE',
  PROTOCOL_UNSUPPORTED: 'PROTOCOL_UNSUPPORTED',
  MASKING_FAILED: 'MASKING_FAILED',
  /**
   * A line typed on a pty was refused after its keys had reached the target, where only the
   * target's terminal modes decide whether they can be discarded: Agate ended the shell.
   */
  SHELL_LINE_NOT_RETRACTABLE: 'SHELL_LINE_NOT_RETRACTABLE',
  /**
   * The captured shell stopped waiting for a command's verdict (a ^C while it was held, the
   * session gone): the command did not run, whatever verdict comes later.
   */
  SHELL_COMMAND_ABANDONED: 'SHELL_COMMAND_ABANDONED',
  /** A write carries Agate's mask marker (a masked read sent back): refused, the real value kept. */
  MASKED_VALUE_WRITE: 'MASKED_VALUE_WRITE',
  /** A JSON patch would copy, move or test a value the client's (masked) copy hides: refused before it runs. */
  MASKED_VALUE_READ: 'MASKED_VALUE_READ',
  // upstream targets
  UPSTREAM_UNREACHABLE: 'UPSTREAM_UNREACHABLE',
  UPSTREAM_AUTH_FAILED: 'UPSTREAM_AUTH_FAILED',
  UPSTREAM_AUTH_UNSUPPORTED: 'UPSTREAM_AUTH_UNSUPPORTED',
  UPSTREAM_HOST_KEY_MISMATCH: 'UPSTREAM_HOST_KEY_MISMATCH',
  TARGET_UNKNOWN: 'TARGET_UNKNOWN',
  // the audit pipeline
  BUS_CLOSED: 'BUS_CLOSED',
  BUS_WRITE_FAILED: 'BUS_WRITE_FAILED',
  BUS_UNAVAILABLE: 'BUS_UNAVAILABLE',
  /** The embedded event log is of an unknown format, or acknowledged records in it are damaged. */
  BUS_LOG_CORRUPT: 'BUS_LOG_CORRUPT',
  /** A consumer group's committed position is unreadable, corrupt or past the end of the log. */
  BUS_OFFSET_INVALID: 'BUS_OFFSET_INVALID',
  VERDICT_TIMEOUT: 'VERDICT_TIMEOUT',
  EVENT_ENCODING: 'EVENT_ENCODING',
  EVENT_UNKNOWN_SCHEMA: 'EVENT_UNKNOWN_SCHEMA',
  STORE_FAILED: 'STORE_FAILED',
  LEDGER_CHAIN_BROKEN: 'LEDGER_CHAIN_BROKEN',
  LEDGER_NOTE_MALFORMED: 'LEDGER_NOTE_MALFORMED',
  LEDGER_SIGNATURE_INVALID: 'LEDGER_SIGNATURE_INVALID',
  LEDGER_KEY_INVALID: 'LEDGER_KEY_INVALID',
  LEDGER_CHECKPOINT_MALFORMED: 'LEDGER_CHECKPOINT_MALFORMED',
  LEDGER_PROOF_MALFORMED: 'LEDGER_PROOF_MALFORMED',
  LEDGER_PROOF_INVALID: 'LEDGER_PROOF_INVALID',
  LEDGER_RECORD_NOT_FOUND: 'LEDGER_RECORD_NOT_FOUND',
  /** The ledger's hashing thread failed or stopped; the batch is retried. */
  LEDGER_WORKER_FAILED: 'LEDGER_WORKER_FAILED',
  /** A published checkpoint exists for a size with other content: writing would fork the signed log. */
  LEDGER_CHECKPOINT_FORK: 'LEDGER_CHECKPOINT_FORK',
  /** The store holds fewer records than a published checkpoint covers (truncated or rolled back). */
  LEDGER_STORE_BEHIND: 'LEDGER_STORE_BEHIND',
  /** The store's records disagree with a published checkpoint (rewritten, re-linked or another history). */
  LEDGER_STORE_DIVERGED: 'LEDGER_STORE_DIVERGED',
  /** The bus delivered an event at a position the store records for another event: the bus log is not the one the ledger read. */
  LEDGER_SOURCE_MISMATCH: 'LEDGER_SOURCE_MISMATCH',
  /** Another ledger instance appended to the chain since this one read its head: the batch is retried from the store's head. */
  LEDGER_CHAIN_MOVED: 'LEDGER_CHAIN_MOVED',
  /** A batch handed over after one that failed: appending it would leave a gap; the bus delivers both again. */
  LEDGER_BATCH_AFTER_FAILURE: 'LEDGER_BATCH_AFTER_FAILURE',
  POLICY_INVALID: 'POLICY_INVALID',
  // HTTP API
  API_UNAUTHORIZED: 'API_UNAUTHORIZED',
  API_NOT_FOUND: 'API_NOT_FOUND',
  API_BAD_REQUEST: 'API_BAD_REQUEST',
  API_FORBIDDEN: 'API_FORBIDDEN',
  API_NOT_ACCEPTABLE: 'API_NOT_ACCEPTABLE',
  /** The approval is no longer pending (decided or expired). */
  API_CONFLICT: 'API_CONFLICT',
  /** The route needs the bus, and this process has none. */
  API_UNAVAILABLE: 'API_UNAVAILABLE',
  /** What the route asked of another service (over the bus) was not done in time (HTTP 504). */
  API_TIMEOUT: 'API_TIMEOUT',
  /** The path exists but not for this method (HTTP 405, with Allow). */
  API_METHOD_NOT_ALLOWED: 'API_METHOD_NOT_ALLOWED',
  /** The web console: a sign-in the identity provider or Agate refused (state, PKCE, ID token, no role). */
  CONSOLE_SIGN_IN_FAILED: 'CONSOLE_SIGN_IN_FAILED',
  /** The web console: a state-changing request without the session's CSRF token, or from another site. */
  CONSOLE_CSRF: 'CONSOLE_CSRF',
  /** The web console: the SAML IdP's metadata (console.saml.idp_metadata_url) cannot be fetched or used at start. */
  CONSOLE_SAML_METADATA: 'CONSOLE_SAML_METADATA',
  /** The web console: a SAML LogoutRequest or LogoutResponse refused (unsigned, wrong signer or issuer, answering no request of ours). */
  CONSOLE_LOGOUT_REFUSED: 'CONSOLE_LOGOUT_REFUSED',
  // analyst SQL
  SQL_INVALID: 'SQL_INVALID',
  SQL_REFUSED: 'SQL_REFUSED',
  SQL_READ_ONLY: 'SQL_READ_ONLY',
  SQL_LIMIT_EXCEEDED: 'SQL_LIMIT_EXCEEDED',
  /** The sandbox analyst SQL runs in on the embedded engine cannot be set up here (query.sql.sandbox). */
  SQL_SANDBOX_UNAVAILABLE: 'SQL_SANDBOX_UNAVAILABLE',
  // SIEM export
  EXPORT_DELIVERY_FAILED: 'EXPORT_DELIVERY_FAILED',
  EXPORT_STATE_INVALID: 'EXPORT_STATE_INVALID',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

interface AgateErrorOptions {
  cause?: unknown;
  retriable?: boolean;
}

export class AgateError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;

  constructor(code: ErrorCode, message: string, options: AgateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/** A client or peer sent bytes that break its protocol's rules. Never retriable. */
export class ProtocolError extends AgateError {
  constructor(message: string, code: ErrorCode = ErrorCode.PROTOCOL_VIOLATION, options: AgateErrorOptions = {}) {
    super(code, message, options);
  }
}

/** A credential presented to Agate was refused; the message is safe to show the client. */
export class AuthenticationError extends AgateError {}

export class ConfigError extends AgateError {
  constructor(message: string, options: AgateErrorOptions = {}) {
    super(ErrorCode.CONFIG_INVALID, message, options);
  }
}

/** A short, secret-free description of any thrown value, for logs. */
export function describeError(err: unknown): string {
  if (err instanceof AgateError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
