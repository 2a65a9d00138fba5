/**
 * A line the client typed, as well as the proxy could reconstruct it. Never exact: the remote
 * line editor, a program reading the terminal, or typeahead can make it run something else.
 */
import { foreignKeys, type KeyRole, type PtyModes } from './terminal-modes.js';

export interface TypedLine {
  text: string;
  /**
   * true when the line used editing the tracker cannot follow (tab completion, history, cursor
   * movement, transposition, escape sequences) or overflowed: it is even less likely to be what ran.
   */
  edited: boolean;
  /** Set when the line cannot be decided at all (too long, a NUL): refused without asking policy. */
  unreadable?: string;
  /** Keys typed into a full-screen program up to an Enter (screen-mode.ts), not a shell's line. */
  screen?: true;
}

const CR = 0x0d;
const LF = 0x0a;
const ESC = 0x1b;
/** readline's operate-and-get-next: runs the line like an Enter. */
const CTRL_O = 0x0f;
/** ^X ^E: edit-and-execute-command, which runs the line once $EDITOR exits (at once with EDITOR=true). */
const CTRL_X = 0x18;
const CTRL_E = 0x05;
/** After ESC in vi mode: `v` is edit-and-execute-command (as ^X^E), Enter accepts the line. */
const VI_EDIT = 0x76;
/** ^D: in vi mode (vi-eof-maybe) it accepts a line that is not empty. */
const CTRL_D = 0x04;

/**
 * Rebuilds the lines typed into an interactive shell from its raw keyboard input, the way a
 * terminal's line discipline would: printable characters append, backspace and ^W/^U erase,
 * ^C discards, CR or LF ends the line. It is a heuristic (the remote shell's own line editor has
 * the final say), so every line it reports is recorded as best effort.
 */
export class LineTracker {
  #line = '';
  #edited = false;
  /** Inside an escape sequence: 0 none, 1 after ESC, 2 inside CSI/SS3 parameters. */
  #escape = 0;
  /** The key before was ^X (a readline prefix). */
  #ctrlX = false;
  /** Keys the terminal's modes give another role than the tracker does (terminal-modes.ts). */
  #foreign = new Map<number, KeyRole | 'none'>();
  /** The terminal's modes could not be read: any key may end a line. */
  #modesUnknown = false;
  readonly #maxLength: number;

  constructor(maxLength = 4096) {
    this.#maxLength = maxLength;
  }

  /**
   * The line so far, forgotten here (the terminal switched screens). Keys typed ahead of the
   * switch are still in the terminal's input, for whichever program reads it next: the caller
   * carries them into that program's line instead of dropping them from the record.
   */
  takePending(): string {
    const text = this.#line;
    this.#line = '';
    this.#edited = false;
    this.#escape = 0;
    this.#ctrlX = false;
    return text;
  }

  /** Starts the line with keys typed ahead into a program that has since left the screen; the line is then edited. */
  carry(text: string): void {
    if (text === '') return;
    this.#append(text.slice(0, this.#maxLength));
    this.#edited = true;
  }

  /**
   * The target terminal's modes as they are now (`unknown` when they could not be read): the
   * agent may have changed them (`stty eof ^A`), and a program reading the terminal line by
   * line gets the lines the kernel makes with them. Under unknown modes every key ends the line.
   */
  setModes(modes: PtyModes | 'unknown'): void {
    this.#modesUnknown = modes === 'unknown';
    this.#foreign = modes === 'unknown' ? new Map() : foreignKeys(modes);
  }

  /**
   * Feeds one byte; returns the finished line when the byte ended one. A key the terminal's
   * modes (setModes) make a line end ends it, edited; one they make an editing key, a signal or
   * a plain key where the tracker reads it otherwise marks the line edited. Besides CR and LF, the
   * keys with which bash's readline runs the line in its default bindings (emacs or vi mode)
   * end it: a shell that reads the terminal without a hook would otherwise run a line no one
   * decided. A key rebound by the agent (`bind`, an inputrc) is not known here.
   */
  push(byte: number): TypedLine | undefined {
    const role = this.#modesUnknown ? 'line-end' : this.#foreign.get(byte);
    if (role === 'line-end') {
      // The kernel ends the line whatever escape sequence or prefix the tracker thought it was in.
      this.#escape = 0;
      this.#ctrlX = false;
      if (byte >= 0x20 && byte !== 0x7f) this.#append(String.fromCharCode(byte));
      this.#edited = true;
      return this.#finish();
    }
    const line = this.#push(byte);
    if (role === undefined) return line;
    if (line !== undefined) return { ...line, edited: true };
    this.#edited = true;
    return undefined;
  }

  #push(byte: number): TypedLine | undefined {
    const afterCtrlX = this.#ctrlX;
    this.#ctrlX = false;
    if (this.#escape === 1) {
      this.#escape = byte === 0x5b || byte === 0x4f ? 2 : 0; // ESC [ (CSI) or ESC O (SS3)
      if (byte === CR || byte === LF || byte === VI_EDIT) return this.#finish();
      return undefined;
    }
    if (this.#escape === 2) {
      if (byte >= 0x40 && byte <= 0x7e) this.#escape = 0; // the final byte of the sequence
      return undefined;
    }
    switch (byte) {
      case CR:
      case LF:
        return this.#finish();
      case CTRL_O:
        this.#edited = true; // it also recalls the next history line
        return this.#finish();
      case CTRL_D:
        if (this.#line === '') break; // an empty line's ^D is EOF: the shell exits
        this.#edited = true;
        return this.#finish();
      case CTRL_E:
        if (!afterCtrlX) break;
        this.#edited = true;
        return this.#finish();
      case CTRL_X:
        this.#ctrlX = true;
        break;
      case ESC:
        this.#escape = 1;
        this.#edited = true; // arrows, history, cursor movement: the line may differ
        return undefined;
      case 0x7f: // DEL, what terminals send for backspace
      case 0x08:
        this.#line = [...this.#line].slice(0, -1).join('');
        return undefined;
      case 0x15: // ^U: erase the line
        this.#line = '';
        return undefined;
      case 0x17: // ^W: erase the last word
        this.#line = this.#line.replace(/\S*\s*$/, '');
        return undefined;
      case 0x03: // ^C: the line is abandoned
        this.#line = '';
        this.#edited = false;
        return undefined;
      case 0x09: // tab completion happens on the far side
        this.#edited = true;
        this.#append(' ');
        return undefined;
    }
    if (byte < 0x20) {
      this.#edited = true; // other control keys (^R search, ^A/^E movement)
      return undefined;
    }
    this.#append(String.fromCharCode(byte));
    return undefined;
  }

  #append(ch: string): void {
    if (this.#line.length >= this.#maxLength) {
      this.#edited = true;
      return;
    }
    this.#line += ch;
  }

  #finish(): TypedLine | undefined {
    const line = { text: Buffer.from(this.#line, 'latin1').toString('utf8'), edited: this.#edited };
    this.#line = '';
    this.#edited = false;
    return line.text.trim() === '' && !line.edited ? undefined : line;
  }
}
