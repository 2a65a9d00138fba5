import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { AgateError, ErrorCode, ProtocolError } from '../../../../core/src/errors.js';
import { saslprep } from './saslprep.js';

/**
 * Credentials the proxy computes as a *client* of the real PostgreSQL server.
 * No error raised here ever includes the password or anything derived from it.
 */

const pbkdf2Async = promisify(pbkdf2);

const md5hex = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

/**
 * Answer to AuthenticationMD5Password: "md5" + md5hex(md5hex(password + user) + salt), where the
 * inner hash is what pg_authid stores and `salt` is the server's 4 random bytes.
 */
export function md5Password(user: string, password: string, salt: Buffer): string {
  if (salt.length !== 4) throw new ProtocolError('MD5 salt must be 4 bytes');
  const stored = md5hex(password + user);
  return 'md5' + md5hex(Buffer.concat([Buffer.from(stored, 'utf8'), salt]));
}

interface ScramClientOptions {
  /** Client nonce; random by default. Injectable for test vectors. Printable ASCII without ','. */
  nonce?: string;
  /** Sent as n=; PostgreSQL ignores it and uses the startup user, so it defaults to empty. */
  username?: string;
  /** Refuse a server asking for more PBKDF2 rounds than this (default 1,000,000). */
  maxIterations?: number;
}

type State = 'initial' | 'sentFirst' | 'sentFinal' | 'done' | 'failed';

const fail = (message: string): AgateError => new AgateError(ErrorCode.UPSTREAM_AUTH_FAILED, message);
const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** RFC 5802 "printable": %x21-2B / %x2D-7E, i.e. visible ASCII except ','. */
const PRINTABLE = /^[\x21-\x2B\x2D-\x7E]+$/;
/** gs2-header "n,,": no channel binding, no authzid; "c=" carries it base64-encoded ("biws"). */
const GS2_HEADER = 'n,,';

/**
 * SCRAM-SHA-256 client (RFC 5802 / RFC 7677) for SASL authentication with the upstream server.
 * Use: send {@link clientFirst} in SASLInitialResponse with mechanism {@link mechanism}; pass the
 * AuthenticationSASLContinue data to {@link clientFinal} and send the result in SASLResponse;
 * pass the AuthenticationSASLFinal data to {@link verifyServerFinal}. Every failure is an
 * AgateError with code UPSTREAM_AUTH_FAILED, and the client cannot be reused after one.
 */
export class ScramSha256Client {
  static readonly mechanism = 'SCRAM-SHA-256';
  readonly mechanism = ScramSha256Client.mechanism;
  private state: State = 'initial';
  private readonly nonce: string;
  private readonly firstBare: string;
  private readonly maxIterations: number;
  private serverSignature: Buffer | undefined;

  constructor(private readonly password: string, options: ScramClientOptions = {}) {
    this.nonce = options.nonce ?? randomBytes(18).toString('base64');
    if (!PRINTABLE.test(this.nonce)) throw fail('SCRAM client nonce must be printable ASCII without commas');
    // saslname escaping (RFC 5802 §5.1): '=' and ',' would otherwise break attribute parsing.
    const user = (options.username ?? '').replace(/=/g, '=3D').replace(/,/g, '=2C');
    this.firstBare = `n=${user},r=${this.nonce}`;
    this.maxIterations = options.maxIterations ?? 1_000_000;
  }

  private advance(from: State, to: State): void {
    if (this.state !== from) throw fail(`SCRAM exchange out of order (in state ${this.state})`);
    this.state = to;
  }

  /** client-first-message: gs2 header + "n=<user>,r=<client nonce>". */
  clientFirst(): string {
    this.advance('initial', 'sentFirst');
    return GS2_HEADER + this.firstBare;
  }

  /**
   * Checks server-first-message ("r=<nonce>,s=<salt>,i=<iterations>") and returns
   * client-final-message with the ClientProof. Async because PBKDF2 runs on the thread pool
   * rather than blocking the proxy's event loop.
   */
  async clientFinal(serverFirst: string): Promise<string> {
    this.advance('sentFirst', 'failed');
    const parts = serverFirst.split(',');
    // Exactly three attributes in this order; a leading "m=" (mandatory extension) is unsupported.
    if (parts.length !== 3) throw fail('malformed SCRAM server-first-message');
    const serverNonce = attribute(parts[0]!, 'r');
    const saltText = attribute(parts[1]!, 's');
    const iterText = attribute(parts[2]!, 'i');
    if (!PRINTABLE.test(serverNonce) || !serverNonce.startsWith(this.nonce) || serverNonce.length <= this.nonce.length) {
      throw fail('SCRAM server nonce does not extend the client nonce');
    }
    if (saltText === '' || !BASE64.test(saltText)) throw fail('malformed SCRAM salt');
    if (!/^[1-9][0-9]{0,9}$/.test(iterText) || Number(iterText) > this.maxIterations) {
      throw fail(`SCRAM iteration count out of range (1..${this.maxIterations})`);
    }

    const salted = await pbkdf2Async(saslprep(this.password), Buffer.from(saltText, 'base64'), Number(iterText), 32, 'sha256');
    const withoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${serverNonce}`;
    const authMessage = `${this.firstBare},${serverFirst},${withoutProof}`;
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const proof = hmac(storedKey, authMessage);
    for (let i = 0; i < proof.length; i++) proof[i]! ^= clientKey[i]!; // ClientProof = ClientKey XOR ClientSignature
    this.serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    this.state = 'sentFinal';
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** Checks server-final-message ("v=<ServerSignature>"), proving the server knew the password too. */
  verifyServerFinal(serverFinal: string): void {
    this.advance('sentFinal', 'failed');
    const expected = this.serverSignature!;
    this.serverSignature = undefined;
    if (serverFinal.startsWith('e=')) {
      const reason = serverFinal.slice(2);
      throw fail(`upstream rejected SCRAM authentication${/^[\x21-\x7E]{1,64}$/.test(reason) ? `: ${reason}` : ''}`);
    }
    const text = attribute(serverFinal, 'v');
    if (!BASE64.test(text)) throw fail('malformed SCRAM server-final-message');
    const actual = Buffer.from(text, 'base64');
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
      throw fail('SCRAM server signature mismatch');
    }
    this.state = 'done';
  }
}

/** The value of "<letter>=<value>", or an auth failure naming only the expected attribute. */
function attribute(part: string, letter: string): string {
  if (!part.startsWith(letter + '=')) throw fail(`malformed SCRAM message: expected attribute '${letter}'`);
  return part.slice(2);
}
