// A small terminal screen for replaying recorded shells: enough of the VT100/xterm control
// sequences for shells and line-oriented programs (cursor moves, erase, colours, wrapping,
// scrolling, the alternate screen as a clear). Output goes in as DOM text, never as HTML.
import { h } from './dom.js';

const blank = () => ({ ch: ' ', cls: '' });

export class Terminal {
  /** @param {number} cols @param {number} rows */
  constructor(cols, rows) {
    this.cols = Math.max(1, Math.min(cols, 500));
    this.rows = Math.max(1, Math.min(rows, 200));
    this.reset();
  }

  reset() {
    this.lines = Array.from({ length: this.rows }, () => this.#blankLine());
    this.x = 0;
    this.y = 0;
    this.saved = { x: 0, y: 0 };
    this.fg = '';
    this.bold = false;
    this.inverse = false;
    this.state = 'text';
    this.params = '';
  }

  /** @param {string} data */
  write(data) {
    for (const ch of data) this.#feed(ch);
  }

  /** The screen as a <pre>'s children: one text run (or span, when coloured) per attribute change. */
  render(pre) {
    const nodes = [];
    this.lines.forEach((line, i) => {
      let end = line.length;
      while (end > 0 && line[end - 1].ch === ' ' && line[end - 1].cls === '') end--;
      let run = '';
      let cls = '';
      const flush = () => { if (run) nodes.push(cls ? h('span', { class: cls }, run) : run); run = ''; };
      for (let x = 0; x < end; x++) {
        if (line[x].cls !== cls) { flush(); cls = line[x].cls; }
        run += line[x].ch;
      }
      flush();
      if (i < this.lines.length - 1) nodes.push('\n');
    });
    pre.replaceChildren(...nodes.map((n) => (typeof n === 'string' ? document.createTextNode(n) : n)));
  }

  /** The screen as plain text (tests, copy). */
  text() {
    return this.lines.map((l) => l.map((c) => c.ch).join('').trimEnd()).join('\n');
  }

  #blankLine() {
    return Array.from({ length: this.cols }, blank);
  }

  #cls() {
    return [this.fg, this.bold ? 't-bold' : '', this.inverse ? 't-inverse' : ''].filter(Boolean).join(' ');
  }

  #lineFeed() {
    if (this.y < this.rows - 1) return void this.y++;
    this.lines.shift();
    this.lines.push(this.#blankLine());
  }

  #feed(ch) {
    switch (this.state) {
      case 'esc': return this.#escape(ch);
      case 'csi': return this.#csiChar(ch);
      case 'osc':
        if (ch === '\x07') this.state = 'text';
        else if (ch === '\x1b') this.state = 'osc-esc';
        return;
      case 'osc-esc': this.state = ch === '[' ? 'csi' : 'text'; this.params = ''; return;
      case 'charset': this.state = 'text'; return;
    }
    const code = ch.codePointAt(0);
    if (ch === '\x1b') return void (this.state = 'esc');
    if (ch === '\r') return void (this.x = 0);
    if (ch === '\n' || ch === '\v' || ch === '\f') return this.#lineFeed();
    if (ch === '\b') return void (this.x = Math.max(0, this.x - 1));
    if (ch === '\t') return void (this.x = Math.min(this.cols - 1, (Math.floor(this.x / 8) + 1) * 8));
    if (code < 0x20 || code === 0x7f) return;
    if (this.x >= this.cols) {
      this.x = 0;
      this.#lineFeed();
    }
    this.lines[this.y][this.x] = { ch, cls: this.#cls() };
    this.x++;
  }

  #escape(ch) {
    this.state = 'text';
    if (ch === '[') { this.state = 'csi'; this.params = ''; }
    else if (ch === ']') this.state = 'osc';
    else if (ch === '(' || ch === ')') this.state = 'charset';
    else if (ch === '7') this.saved = { x: this.x, y: this.y };
    else if (ch === '8') ({ x: this.x, y: this.y } = this.saved);
    else if (ch === 'M') { if (this.y > 0) this.y--; }
    else if (ch === 'c') this.reset();
  }

  #csiChar(ch) {
    const code = ch.codePointAt(0);
    if (code >= 0x30 && code <= 0x3f) return void (this.params += ch);
    if (code >= 0x20 && code <= 0x2f) return;
    this.state = 'text';
    this.#csi(ch, this.params);
  }

  #csi(final, raw) {
    const priv = raw.startsWith('?');
    const ps = (priv ? raw.slice(1) : raw).split(';').map((p) => (p === '' ? NaN : Number(p)));
    const n = (i, d = 1) => (Number.isNaN(ps[i]) || ps[i] === undefined ? d : ps[i]);
    const clampX = (x) => Math.max(0, Math.min(this.cols - 1, x));
    const clampY = (y) => Math.max(0, Math.min(this.rows - 1, y));
    const erase = (y, from, to) => { for (let x = from; x < to; x++) this.lines[y][x] = blank(); };
    switch (final) {
      case 'A': this.y = clampY(this.y - n(0)); break;
      case 'B': this.y = clampY(this.y + n(0)); break;
      case 'C': this.x = clampX(this.x + n(0)); break;
      case 'D': this.x = clampX(Math.min(this.x, this.cols - 1) - n(0)); break;
      case 'G': this.x = clampX(n(0) - 1); break;
      case 'd': this.y = clampY(n(0) - 1); break;
      case 'H': case 'f': this.y = clampY(n(0) - 1); this.x = clampX(n(1) - 1); break;
      case 'J': {
        const mode = n(0, 0);
        if (mode === 0) { erase(this.y, Math.min(this.x, this.cols), this.cols); for (let y = this.y + 1; y < this.rows; y++) erase(y, 0, this.cols); }
        else if (mode === 1) { for (let y = 0; y < this.y; y++) erase(y, 0, this.cols); erase(this.y, 0, Math.min(this.x + 1, this.cols)); }
        else for (let y = 0; y < this.rows; y++) erase(y, 0, this.cols);
        break;
      }
      case 'K': {
        const mode = n(0, 0);
        const x = Math.min(this.x, this.cols);
        if (mode === 0) erase(this.y, x, this.cols);
        else if (mode === 1) erase(this.y, 0, Math.min(x + 1, this.cols));
        else erase(this.y, 0, this.cols);
        break;
      }
      case 'X': erase(this.y, Math.min(this.x, this.cols), Math.min(this.cols, this.x + n(0))); break;
      case 'P': { const line = this.lines[this.y]; line.splice(this.x, n(0)); while (line.length < this.cols) line.push(blank()); break; }
      case '@': { const line = this.lines[this.y]; line.splice(this.x, 0, ...Array.from({ length: n(0) }, blank)); line.length = this.cols; break; }
      case 'L': for (let i = 0; i < n(0); i++) { this.lines.splice(this.y, 0, this.#blankLine()); this.lines.length = this.rows; } break;
      case 'M': for (let i = 0; i < n(0); i++) { this.lines.splice(this.y, 1); this.lines.push(this.#blankLine()); } break;
      case 'm': this.#sgr(raw === '' ? [0] : ps.map((p) => (Number.isNaN(p) ? 0 : p))); break;
      case 'h': case 'l':
        // The alternate screen (full-screen programs) starts and ends on a clear screen.
        if (priv && [47, 1047, 1049].some((m) => ps.includes(m))) { for (let y = 0; y < this.rows; y++) erase(y, 0, this.cols); this.x = 0; this.y = 0; }
        break;
      case 's': this.saved = { x: this.x, y: this.y }; break;
      case 'u': ({ x: this.x, y: this.y } = this.saved); break;
    }
  }

  #sgr(codes) {
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) { this.fg = ''; this.bold = false; this.inverse = false; }
      else if (c === 1) this.bold = true;
      else if (c === 22) this.bold = false;
      else if (c === 7) this.inverse = true;
      else if (c === 27) this.inverse = false;
      else if (c >= 30 && c <= 37) this.fg = `t-fg${c - 30}`;
      else if (c >= 90 && c <= 97) this.fg = `t-fg${c - 90} t-bright`;
      else if (c === 39) this.fg = '';
      else if (c === 38 || c === 48) i += codes[i + 1] === 5 ? 2 : codes[i + 1] === 2 ? 4 : 0; // 256-colour and RGB: skipped
    }
  }
}
