import { createHash, type Hash } from 'node:crypto';
import type { FileResult } from './hooks.js';

/** A file the target opened, by the decision that allowed it: what moved through its handle so far. */
export interface OpenFile<T> {
  token: T;
  path: string;
  hash: Hash;
  bytesRead: number;
  bytesWritten: number;
  /** Where the next transfer must start for the digest to stay a digest of the file. */
  nextOffset: number;
  sequential: boolean;
  /** copy-data requests that wrote into it: the target copied bytes Agate never saw. */
  copiedInto: number;
  /** copy-data requests that read from it: the target read bytes Agate never saw. */
  copiedFrom: number;
  /** Writes the target answered with an error, and their bytes (no longer counted in `bytesWritten`). */
  failedWrites: number;
  failedBytes: number;
}

/** The data of one streamed write or data reply: the file it belongs to (if known) and how much is still to come. */
export interface StreamedData<T> {
  file: OpenFile<T> | undefined;
  left: number;
}

type Direction = 'read' | 'write';

export function openFile<T>(token: T, path: string): OpenFile<T> {
  return { token, path, hash: createHash('sha256'), bytesRead: 0, bytesWritten: 0, nextOffset: 0, sequential: true, copiedInto: 0, copiedFrom: 0, failedWrites: 0, failedBytes: 0 };
}

/** A transfer of `length` bytes at `offset` starts: the digest holds only while they come in file order. */
export function begin<T>(file: OpenFile<T>, offset: number, length: number): void {
  if (offset !== file.nextOffset) file.sequential = false;
  file.nextOffset = offset + length;
}

/** Bytes moved whole (a write request or data reply that came in one packet): hashed and counted. */
export function account<T>(file: OpenFile<T>, offset: number, data: Buffer, direction: Direction): void {
  begin(file, offset, data.length);
  file.hash.update(data);
  count(file, data.length, direction);
}

/** The next bytes of a streamed transfer: hashed and counted against its file. */
export function carry<T>(data: StreamedData<T>, piece: Buffer, direction: Direction): void {
  const n = Math.min(piece.length, data.left);
  data.left -= n;
  if (data.file === undefined || n === 0) return;
  data.file.hash.update(n === piece.length ? piece : piece.subarray(0, n));
  count(data.file, n, direction);
}

/** The target answered a write with an error: its bytes were counted when they passed, and are taken back. */
export function failedWrite<T>(file: OpenFile<T>, length: number): void {
  file.bytesWritten -= length;
  file.failedWrites += 1;
  file.failedBytes += length;
}

function count<T>(file: OpenFile<T>, n: number, direction: Direction): void {
  if (direction === 'write') file.bytesWritten += n;
  else file.bytesRead += n;
}

/** What is recorded for a file when it closes (or the channel ends with it open). */
export function fileResult<T>(file: OpenFile<T>, ok: boolean, message: string | null): FileResult {
  const moved = file.bytesRead + file.bytesWritten;
  const digest = moved === 0 || !file.sequential || file.copiedInto > 0 || file.copiedFrom > 0 || file.failedWrites > 0 ? null : `sha256:${file.hash.digest('hex')}`;
  const order = file.sequential ? '' : ' (out of order: no digest)';
  const into = file.copiedInto === 0 ? '' : `, and ${file.copiedInto} server-side copy-data request(s) wrote into it (bytes not seen by Agate: no digest)`;
  const from = file.copiedFrom === 0 ? '' : `, and ${file.copiedFrom} server-side copy-data request(s) read from it (bytes not seen by Agate: no digest)`;
  const failed = file.failedWrites === 0 ? '' : `, and ${file.failedWrites} write(s) the target failed (${file.failedBytes} bytes, not counted: no digest)`;
  return { ok, message, bytesRead: file.bytesRead, bytesWritten: file.bytesWritten, digest, summary: `sftp ${file.path}: ${file.bytesWritten} bytes written, ${file.bytesRead} bytes read${order}${into}${from}${failed}` };
}
