/**
 * A line a shell reads with no terminal in between (`ssh -T host`, `ssh host < script`): the
 * bytes up to and including LF, exactly as the shell gets them, or why it cannot be decided.
 */
export type PipeLine = { kind: 'line'; bytes: Buffer; text: string } | { kind: 'unreadable'; text: string; reason: string };

const LF = 0x0a;

/** Longest line held for its decision; a longer one is refused whole. */
const MAX_PIPE_LINE = 64 * 1024;

/**
 * Splits a shell's stdin into the lines it reads when no terminal stands in between. There is
 * no line discipline on a pipe: backspace, ^U, ^C and CR are bytes of the line like any other
 * and only LF ends one, so the line is decided on exactly those bytes, and the relay holds them
 * until the decision (what reaches the shell before it would run whatever the decision says).
 */
export class PipeLines {
  #parts: Buffer[] = [];
  #length = 0;
  /** The line ran past the cap: its bytes are dropped until its LF, then it is refused. */
  #overflow = false;
  readonly #max: number;

  constructor(maxLength = MAX_PIPE_LINE) {
    this.#max = maxLength;
  }

  /** Takes the next bytes of stdin; returns the lines they finished (the rest waits for its LF). */
  push(chunk: Buffer): PipeLine[] {
    const lines: PipeLine[] = [];
    let from = 0;
    for (let lf = chunk.indexOf(LF); lf !== -1; lf = chunk.indexOf(LF, from)) {
      this.#add(chunk.subarray(from, lf + 1));
      lines.push(this.#take());
      from = lf + 1;
    }
    this.#add(chunk.subarray(from));
    return lines;
  }

  /** The client's EOF: a last line without LF is still read (and run) by the shell. */
  end(): PipeLine | undefined {
    return this.#length === 0 && !this.#overflow ? undefined : this.#take();
  }

  #add(bytes: Buffer): void {
    if (bytes.length === 0 || this.#overflow) return;
    if (this.#length + bytes.length > this.#max) {
      this.#overflow = true;
      return;
    }
    this.#parts.push(Buffer.from(bytes)); // a copy: the chunk's buffer may be reused
    this.#length += bytes.length;
  }

  #take(): PipeLine {
    const bytes = Buffer.concat(this.#parts);
    const overflow = this.#overflow;
    this.#parts = [];
    this.#length = 0;
    this.#overflow = false;
    const text = bytes.toString('utf8').replace(/\n$/, '');
    if (overflow) return { kind: 'unreadable', text: `${text.slice(0, 200)}…`, reason: `the line is longer than ${this.#max} bytes` };
    // bash drops a NUL and reads on: the policy would read other words than bash runs.
    if (bytes.includes(0)) return { kind: 'unreadable', text: text.replace(/\0/g, '\\0'), reason: 'the line contains a NUL byte' };
    return { kind: 'line', bytes, text };
  }
}
