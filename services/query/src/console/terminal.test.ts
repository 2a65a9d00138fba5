import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../../../../core/src/package-root.js';
import { CONSOLE_ASSETS_DIR } from './assets.js';

/* The console's replay terminal (a browser module; its screen model needs no DOM). */
interface Term { write(data: string): void; text(): string; reset(): void; x: number; y: number }
const { Terminal } = (await import(pathToFileURL(join(packageRoot(), CONSOLE_ASSETS_DIR, 'terminal.js')).href)) as { Terminal: new (cols: number, rows: number) => Term };

const term = suite('console terminal');

term('text, CR/LF, backspace and tabs land where a terminal puts them', () => {
  const t = new Terminal(20, 3);
  t.write('$ ls\r\nab\bc\tx\r\n');
  assert.is(t.text(), '$ ls\nac      x\n');
});

term('long lines wrap and the screen scrolls', () => {
  const t = new Terminal(4, 2);
  t.write('abcdefgh\r\nij');
  assert.is(t.text(), 'efgh\nij');
});

term('cursor moves, erase in line and display, colours do not reach the text', () => {
  const t = new Terminal(10, 3);
  t.write('hello\x1b[2Dxy\r\n\x1b[31mred\x1b[0m world');
  assert.is(t.text(), 'helxy\nred world\n');
  t.write('\x1b[1;3H\x1b[K');
  assert.is(t.text(), 'he\nred world\n');
  t.write('\x1b[2J\x1b[H\x1b]0;title\x07top');
  assert.is(t.text(), 'top\n\n');
  t.write('\x1b[?1049h');
  assert.is(t.text(), '\n\n');
});

term('escape sequences split across writes are still understood', () => {
  const t = new Terminal(10, 2);
  t.write('ab\x1b[');
  t.write('1D');
  t.write('c');
  assert.is(t.text(), 'ac\n');
});

term.run();
