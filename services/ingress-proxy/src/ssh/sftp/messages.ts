/** SFTP v3 packet types (draft-ietf-secsh-filexfer-02, as OpenSSH speaks it). */
export const enum PacketType {
  Init = 1,
  Version = 2,
  Open = 3,
  Close = 4,
  Read = 5,
  Write = 6,
  Lstat = 7,
  Fstat = 8,
  Setstat = 9,
  Fsetstat = 10,
  Opendir = 11,
  Readdir = 12,
  Remove = 13,
  Mkdir = 14,
  Rmdir = 15,
  Realpath = 16,
  Stat = 17,
  Rename = 18,
  Readlink = 19,
  Symlink = 20,
  Status = 101,
  Handle = 102,
  Data = 103,
  Name = 104,
  Attrs = 105,
  Extended = 200,
  ExtendedReply = 201,
}

/** SSH_FXP_STATUS codes. */
export const enum StatusCode {
  Ok = 0,
  Eof = 1,
  NoSuchFile = 2,
  PermissionDenied = 3,
  Failure = 4,
}

/** SSH_FXF_* open flags: any of these makes an open a write. */
export const OPEN_WRITE_FLAGS = 0x02 | 0x04 | 0x08 | 0x10; // WRITE | APPEND | CREAT | TRUNC

/** OpenSSH's own bound on one SFTP packet (sftp-common.h SFTP_MAX_MSG_LENGTH). */
export const MAX_PACKET = 256 * 1024;

/** The file operations policy can name (config `match.ssh.operations`). */
export type FileOperation = 'read' | 'write' | 'remove' | 'rename' | 'mkdir' | 'rmdir' | 'setstat' | 'symlink';

/** A client request, decoded as far as auditing needs. Paths are raw bytes read as UTF-8. */
export type SftpRequest =
  | { kind: 'init' }
  | { kind: 'open'; id: number; path: string; flags: number }
  | { kind: 'close'; id: number; handle: string }
  | { kind: 'read'; id: number; handle: string; offset: number; length: number }
  | { kind: 'write'; id: number; handle: string; offset: number; data: Buffer }
  | { kind: 'fsetstat'; id: number; handle: string }
  /** copy-data: the target copies from one open file into another; the data never passes Agate. */
  | { kind: 'copy'; id: number; from: string; to: string }
  /** remove, rename, mkdir, rmdir, setstat, symlink (and the OpenSSH extensions that do the same). */
  | { kind: 'change'; id: number; operation: Exclude<FileOperation, 'read' | 'write'>; path: string; targetPath?: string; name: string }
  /** Anything that reads metadata only (stat, readdir, realpath, …): relayed unrecorded. */
  | { kind: 'other'; id: number; type: number };

/** A server reply, decoded as far as auditing needs. */
export type SftpReply =
  | { kind: 'version' }
  | { kind: 'status'; id: number; code: number; message: string }
  | { kind: 'handle'; id: number; handle: string }
  | { kind: 'data'; id: number; data: Buffer }
  | { kind: 'other'; id: number };

/** The start of a streamed SSH_FXP_WRITE: its fields, and the part of its data that came with them. */
export interface WriteHead {
  id: number;
  handle: string;
  offset: number;
  /** The data's full length; `data` holds its first bytes. */
  dataLength: number;
  data: Buffer;
}

/** The start of a streamed SSH_FXP_DATA reply. */
export interface DataHead {
  id: number;
  dataLength: number;
  data: Buffer;
}
