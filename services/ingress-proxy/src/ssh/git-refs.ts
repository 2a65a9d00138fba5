/**
 * Reads the first pkt-line section of a git stream (up to the flush packet `0000`): each line is
 * four hex digits of length (including themselves), then the payload. Used on the two streams
 * of `git-receive-pack` / `git-upload-pack` run over ssh to learn which refs a push updates and
 * which refs a fetch asked for. Bounded: it stops reading after `maxBytes`.
 */
export class PktLineSection {
  readonly lines: string[] = [];
  #pending: Buffer = Buffer.alloc(0);
  #done = false;
  #seen = 0;
  /** Set when the section was cut short (too long or malformed); the lines read so far stand. */
  incomplete = false;

  constructor(private readonly maxBytes = 256 * 1024) {}

  get done(): boolean {
    return this.#done;
  }

  push(chunk: Buffer): void {
    if (this.#done) return;
    this.#seen += chunk.length;
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    while (this.#pending.length >= 4) {
      const length = Number.parseInt(this.#pending.subarray(0, 4).toString('latin1'), 16);
      if (!/^[0-9a-f]{4}$/i.test(this.#pending.subarray(0, 4).toString('latin1'))) return this.#stop(true);
      if (length === 0) return this.#stop(false); // flush-pkt
      if (length < 4) {
        this.#pending = this.#pending.subarray(4); // delim/response-end packets (protocol v2)
        continue;
      }
      if (this.#pending.length < length) break;
      this.lines.push(this.#pending.subarray(4, length).toString('utf8').replace(/\n$/, ''));
      this.#pending = this.#pending.subarray(length);
    }
    if (this.#seen > this.maxBytes) this.#stop(true);
  }

  #stop(incomplete: boolean): void {
    this.#done = true;
    this.incomplete = incomplete;
    this.#pending = Buffer.alloc(0);
  }
}

interface RefUpdate {
  old: string;
  new: string;
  ref: string;
}

/** The commands of a push: `old-oid new-oid refname`, the first one followed by NUL and capabilities. */
export function refUpdates(lines: readonly string[]): RefUpdate[] {
  const out: RefUpdate[] = [];
  for (const line of lines) {
    const m = /^([0-9a-f]{40,64}) ([0-9a-f]{40,64}) ([^\0\s]+)/.exec(line);
    if (m !== null) out.push({ old: m[1]!, new: m[2]!, ref: m[3]! });
  }
  return out;
}

/** What a fetch asked for: the oids of its `want` lines, named by the server's advertisement. */
export function wantedRefs(advertisement: readonly string[], request: readonly string[]): { oid: string; refs: string[] }[] {
  const names = new Map<string, string[]>();
  for (const line of advertisement) {
    const m = /^([0-9a-f]{40,64}) ([^\0\s]+)/.exec(line);
    if (m !== null) names.set(m[1]!, [...(names.get(m[1]!) ?? []), m[2]!]);
  }
  const out: { oid: string; refs: string[] }[] = [];
  for (const line of request) {
    const m = /^want ([0-9a-f]{40,64})/.exec(line);
    // A clone may want one oid once per ref that points at it.
    if (m !== null && !out.some((w) => w.oid === m[1])) out.push({ oid: m[1]!, refs: names.get(m[1]!) ?? [] });
  }
  return out;
}
