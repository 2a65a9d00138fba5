/**
 * Follows whether the terminal shows a full-screen program (less, vim, top): such programs switch
 * to the alternate screen (`ESC [ ? 1049 h`, also modes 1047 and 47) and back (`… l`) on exit.
 * While one runs, keystrokes are its input, not shell lines: Agate injects nothing into them, but
 * decides each Enter on the keys before it (ScreenKeys): the program may run a command from them,
 * and the output claiming the full screen is the agent's to print. Sequences split across output
 * chunks are found whole.
 */
const SWITCH = /\x1b\[\?(?:1049|1047|47)([hl])/g;
/** Longest switch sequence, less one: what is kept of a chunk's end for the next. */
const CARRY = '\x1b[?1049'.length;

export class ScreenMode {
  #alternate = false;
  #tail = '';

  get fullScreen(): boolean {
    return this.#alternate;
  }

  /** Reads terminal output; true when it switched screens (either way). */
  output(chunk: Buffer): boolean {
    const text = this.#tail + chunk.toString('latin1');
    const before = this.#alternate;
    let switched = false;
    for (const m of text.matchAll(SWITCH)) {
      this.#alternate = m[1] === 'h';
      switched = true;
    }
    // Keep a possible partial sequence; never one already matched.
    const last = text.lastIndexOf('\x1b');
    this.#tail = last >= 0 && last >= text.length - CARRY && !SWITCH.test(text.slice(last)) ? text.slice(last) : '';
    SWITCH.lastIndex = 0;
    return switched || before !== this.#alternate;
  }
}

/** Most of a full-screen line kept for its record: the keys nearest the Enter (where `:!cmd` is). */
const SCREEN_LINE_MAX = 4096;

/** The keys typed into a full-screen program since its last Enter, readable in a record. */
export class ScreenKeys {
  #text = '';

  add(keys: Buffer | string): void {
    if (keys.length === 0) return;
    this.#text = (this.#text + (typeof keys === 'string' ? keys : keys.toString('utf8'))).slice(-SCREEN_LINE_MAX);
  }

  /** The keys so far as typed, and forgets them. */
  takeRaw(): string {
    const text = this.#text;
    this.#text = '';
    return text;
  }

  /** The keys so far, control keys as `^X` (ESC `^[`), and forgets them. */
  take(): string {
    const text = this.#text.replace(/[\x00-\x1f\x7f]/g, (c) => (c === '\x7f' ? '^?' : `^${String.fromCharCode(c.charCodeAt(0) + 64)}`));
    this.#text = '';
    return text;
  }
}
