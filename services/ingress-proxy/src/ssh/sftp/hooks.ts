import type { ExecOutcome } from '../exec-relay.js';
import type { FileOperation } from './messages.js';

/** One file operation the client asked for, as policy sees it. */
export interface FileRequest {
  operation: FileOperation;
  path: string;
  targetPath?: string;
  /** The SFTP request's name (`open`, `posix-rename@openssh.com`, …). */
  request: string;
}

/** How a recorded operation ended: for a file, once it is closed. */
export interface FileResult {
  ok: boolean;
  /** Refused by Agate before it reached the target. */
  refused?: boolean;
  /** The server's status message on failure. */
  message: string | null;
  bytesRead: number;
  bytesWritten: number;
  /** `sha256:<hex>` over the file data moved, in file order; null when none moved or it moved out of order. */
  digest: string | null;
  summary: string;
}

/** What the session supplies: a decision per operation, and a record of how each ended. */
export interface SftpHooks<T> {
  /** Records and decides one operation; `refusal` set means it must not reach the target. */
  decide(request: FileRequest): Promise<{ token: T; refusal?: string }>;
  /** Records how an allowed operation ended. */
  finished(token: T, result: FileResult): void;
}

/** `error`: set when the client broke the protocol; the channel was closed. */
export type SftpOutcome = ExecOutcome;
