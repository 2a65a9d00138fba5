import { ErrorCode, ProtocolError } from '../../../../../core/src/errors.js';
import { PacketType, type DataHead, type SftpReply, type SftpRequest, type WriteHead } from './messages.js';
import { PacketReader } from './reader.js';

/** Decodes one client packet (type byte first, length prefix removed). */
export function parseRequest(packet: Buffer): SftpRequest {
  const r = new PacketReader(packet);
  const type = r.byte();
  if (type === PacketType.Init) return { kind: 'init' };
  const id = r.uint32();
  switch (type) {
    case PacketType.Open: // string filename, uint32 pflags, ATTRS
      return { kind: 'open', id, path: r.string(), flags: r.uint32() };
    case PacketType.Close: // string handle
      return { kind: 'close', id, handle: r.handle() };
    case PacketType.Read: // string handle, uint64 offset, uint32 len
      return { kind: 'read', id, handle: r.handle(), offset: r.uint64(), length: r.uint32() };
    case PacketType.Write: // string handle, uint64 offset, string data
      return { kind: 'write', id, handle: r.handle(), offset: r.uint64(), data: r.bytes() };
    case PacketType.Fsetstat: // string handle, ATTRS
      return { kind: 'fsetstat', id, handle: r.handle() };
    case PacketType.Setstat: // string path, ATTRS
      return { kind: 'change', id, operation: 'setstat', path: r.string(), name: 'setstat' };
    case PacketType.Remove:
      return { kind: 'change', id, operation: 'remove', path: r.string(), name: 'remove' };
    case PacketType.Mkdir:
      return { kind: 'change', id, operation: 'mkdir', path: r.string(), name: 'mkdir' };
    case PacketType.Rmdir:
      return { kind: 'change', id, operation: 'rmdir', path: r.string(), name: 'rmdir' };
    case PacketType.Rename: // string oldpath, string newpath
      return { kind: 'change', id, operation: 'rename', path: r.string(), targetPath: r.string(), name: 'rename' };
    case PacketType.Symlink: {
      // OpenSSH sends (target, link), the reverse of the draft; both paths are recorded.
      const first = r.string();
      return { kind: 'change', id, operation: 'symlink', path: r.string(), targetPath: first, name: 'symlink' };
    }
    case PacketType.Extended:
      return parseExtended(id, r);
    default:
      return { kind: 'other', id, type };
  }
}

/** OpenSSH extensions that change files are decided like their plain counterparts. */
function parseExtended(id: number, r: PacketReader): SftpRequest {
  const name = r.string();
  switch (name) {
    case 'posix-rename@openssh.com':
      return { kind: 'change', id, operation: 'rename', path: r.string(), targetPath: r.string(), name };
    case 'hardlink@openssh.com':
      return { kind: 'change', id, operation: 'symlink', path: r.string(), targetPath: r.string(), name };
    case 'lsetstat@openssh.com':
      return { kind: 'change', id, operation: 'setstat', path: r.string(), name };
    case 'copy-data': { // string read-from-handle, uint64 offset, uint64 length, string write-to-handle, uint64 offset
      const from = r.handle();
      r.uint64();
      r.uint64();
      return { kind: 'copy', id, from, to: r.handle() };
    }
    default:
      return { kind: 'other', id, type: PacketType.Extended };
  }
}

/** Decodes one server packet (type byte first). */
export function parseReply(packet: Buffer): SftpReply {
  const r = new PacketReader(packet);
  const type = r.byte();
  if (type === PacketType.Version) return { kind: 'version' };
  const id = r.uint32();
  switch (type) {
    case PacketType.Status: {
      const code = r.uint32();
      // The message is optional in practice (some servers end the packet after the code).
      let message = '';
      try {
        message = r.string();
      } catch {
        message = '';
      }
      return { kind: 'status', id, code, message };
    }
    case PacketType.Handle:
      return { kind: 'handle', id, handle: r.handle() };
    case PacketType.Data:
      return { kind: 'data', id, data: r.bytes() };
    default:
      return { kind: 'other', id };
  }
}

/**
 * Decodes the head of a streamed write request (type byte first, length prefix removed);
 * `bodyLength` is the whole packet's length as its prefix gave it.
 */
export function parseWriteHead(head: Buffer, bodyLength: number): WriteHead {
  const r = new PacketReader(head);
  if (r.byte() !== PacketType.Write) throw new ProtocolError('sftp: a streamed packet is not a write', ErrorCode.PROTOCOL_VIOLATION);
  // uint32 id, string handle, uint64 offset, string data (the packet's last field)
  const id = r.uint32();
  const handle = r.handle();
  const offset = r.uint64();
  return { id, handle, offset, ...dataTail(r, bodyLength) };
}

/** Decodes the head of a streamed data reply: uint32 id, string data (the packet's last field). */
export function parseDataHead(head: Buffer, bodyLength: number): DataHead {
  const r = new PacketReader(head);
  if (r.byte() !== PacketType.Data) throw new ProtocolError('sftp: a streamed packet is not a data reply', ErrorCode.PROTOCOL_VIOLATION);
  const id = r.uint32();
  return { id, ...dataTail(r, bodyLength) };
}

/**
 * The data field: it must fit in what the packet has left (bytes after it, which no client sends,
 * are relayed unhashed, as parseRequest ignores them in a whole packet).
 */
function dataTail(r: PacketReader, bodyLength: number): { dataLength: number; data: Buffer } {
  const dataLength = r.uint32();
  if (r.offset + dataLength > bodyLength) throw new ProtocolError(`sftp: data of ${dataLength} bytes overruns a packet of ${bodyLength}`, ErrorCode.PROTOCOL_VIOLATION);
  const data = r.rest();
  return { dataLength, data: data.length > dataLength ? data.subarray(0, dataLength) : data };
}
