/**
 * The client's half of a push, before its pack (git's pack-protocol, "Reference Update Request"):
 *
 *   shallow <oid>                                  (0..n, only from a shallow clone)
 *   <old-oid> <new-oid> <refname>\0<capabilities>  (the first command)
 *   <old-oid> <new-oid> <refname>                  (the rest)
 *   flush-pkt (0000)
 *   [push options, one per pkt-line, then flush — only with the push-options capability]
 *   [the pack — unless every command is a deletion]
 *
 * Each line is a pkt-line: four hex digits of length (counting themselves), then the payload.
 */

/** The all-zero oid: as old-oid it creates a ref, as new-oid it deletes one. */
const ZERO = /^0+$/;

type RefAction = 'create' | 'update' | 'delete';

export interface RefCommand {
  old: string;
  new: string;
  ref: string;
  action: RefAction;
}

export interface PushRequest {
  commands: RefCommand[];
  capabilities: string[];
  options: string[];
  /** Offset in the client's stream where the pack starts. */
  packStart: number;
  /** false when every command deletes a ref: the client sends no pack. */
  packFollows: boolean;
}

type PushRequestRead = { kind: 'more' } | { kind: 'request'; request: PushRequest } | { kind: 'invalid'; reason: string };

/** Longest pkt-line payload git writes (LARGE_PACKET_MAX 65520 minus the 4-byte header). */
const MAX_PKT = 65520;

/** Reads the request from the bytes received so far; `more` until its last flush has arrived. */
export function readPushRequest(buf: Buffer): PushRequestRead {
  const first = readSection(buf, 0);
  if (first.kind !== 'section') return first;
  const commands: RefCommand[] = [];
  let capabilities: string[] = [];
  for (const raw of first.lines) {
    const [line, caps] = splitCapabilities(raw);
    if (caps !== undefined) {
      if (commands.length > 0) return invalid('capabilities after the first command');
      capabilities = caps.split(' ').filter((c) => c !== '');
    }
    if (/^shallow [0-9a-f]{40,64}$/.test(line) && commands.length === 0) continue;
    if (line === 'push-cert') return invalid('signed pushes (push --signed) cannot be read by Agate');
    const m = /^([0-9a-f]{40}|[0-9a-f]{64}) ([0-9a-f]{40}|[0-9a-f]{64}) (refs\/[^\0\s]+|HEAD)$/.exec(line);
    if (m === null) return invalid(`not a ref update command: ${JSON.stringify(line.slice(0, 120))}`);
    const [, old, next, ref] = m as unknown as [string, string, string, string];
    if (ZERO.test(old) && ZERO.test(next)) return invalid(`a command that neither creates nor deletes ${ref}`);
    commands.push({ old, new: next, ref, action: ZERO.test(old) ? 'create' : ZERO.test(next) ? 'delete' : 'update' });
  }
  let end = first.end;
  let options: string[] = [];
  // Push options follow only when the client asked for them (and sent at least one command).
  if (commands.length > 0 && capabilities.includes('push-options')) {
    const second = readSection(buf, end);
    if (second.kind !== 'section') return second;
    options = second.lines;
    end = second.end;
  }
  const packFollows = commands.some((c) => c.action !== 'delete');
  return { kind: 'request', request: { commands, capabilities, options, packStart: end, packFollows } };
}

function splitCapabilities(raw: string): [string, string | undefined] {
  const nul = raw.indexOf('\0');
  return nul < 0 ? [raw, undefined] : [raw.slice(0, nul), raw.slice(nul + 1)];
}

function invalid(reason: string): PushRequestRead {
  return { kind: 'invalid', reason };
}

type SectionRead = { kind: 'section'; lines: string[]; end: number } | { kind: 'more' } | { kind: 'invalid'; reason: string };

/** The pkt-lines from `start` up to and including the next flush-pkt. */
function readSection(buf: Buffer, start: number): SectionRead {
  const lines: string[] = [];
  let at = start;
  while (at + 4 <= buf.length) {
    const head = buf.toString('latin1', at, at + 4);
    if (!/^[0-9a-f]{4}$/.test(head)) return { kind: 'invalid', reason: `not a pkt-line length: ${JSON.stringify(head)}` };
    const length = Number.parseInt(head, 16);
    if (length === 0) return { kind: 'section', lines, end: at + 4 };
    if (length < 5 || length - 4 > MAX_PKT) return { kind: 'invalid', reason: `pkt-line length ${length} out of range` };
    if (at + length > buf.length) return { kind: 'more' };
    lines.push(buf.toString('utf8', at + 4, at + length).replace(/\n$/, ''));
    at += length;
  }
  return { kind: 'more' };
}
