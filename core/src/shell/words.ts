import type { Node } from 'web-tree-sitter';

/**
 * The value a shell word has after quote removal, or undefined when it depends on the run
 * (a parameter, command or arithmetic expansion, a glob or brace pattern): `r''m`, `"rm"`,
 * `\rm` and `$'\x72m'` all read `rm`.
 */
export function wordValue(node: Node): string | undefined {
  switch (node.type) {
    case 'command_name':
      return node.firstNamedChild === null ? undefined : wordValue(node.firstNamedChild);
    case 'word':
      return unescapeBare(node.text);
    case 'number':
    case 'variable_name':
      return node.text;
    case 'raw_string':
      return node.text.slice(1, -1);
    case 'string':
    case 'translated_string': {
      for (const c of node.namedChildren) if (c !== null && c.type !== 'string_content') return undefined;
      const open = node.type === 'string' ? 1 : 2;
      return unescapeDouble(node.text.slice(open, -1));
    }
    case 'ansi_c_string':
      return unescapeAnsiC(node.text.slice(2, -1));
    case 'concatenation': {
      let out = '';
      for (const c of node.namedChildren) {
        const v = c === null ? undefined : wordValue(c);
        if (v === undefined) return undefined;
        out += v;
      }
      // tree-sitter leaves bare punctuation between named parts (`a{b`) unnamed: compare lengths.
      return node.namedChildren.length > 0 && !hasGaps(node) ? out : undefined;
    }
    default:
      return undefined;
  }
}

/** True when the concatenation's named children do not cover its whole text. */
function hasGaps(node: Node): boolean {
  let at = node.startIndex;
  for (const c of node.namedChildren) {
    if (c === null || c.startIndex !== at) return true;
    at = c.endIndex;
  }
  return at !== node.endIndex;
}

/** Outside quotes a backslash takes the next character literally; `\<newline>` vanishes. */
function unescapeBare(text: string): string | undefined {
  // An unquoted glob or brace list makes the word a pattern the shell expands at run time.
  if (/(^|[^\\])(\\\\)*[*?[]/.test(text) || /(^|[^\\])\{[^}]*,/.test(text)) return undefined;
  return text.replace(/\\(\n|.)/g, (_m, c: string) => (c === '\n' ? '' : c));
}

/** Inside double quotes a backslash escapes only `$`, backquote, `"`, `\` and newline. */
function unescapeDouble(text: string): string {
  return text.replace(/\\([$`"\\\n])/g, (_m, c: string) => (c === '\n' ? '' : c));
}

const ANSI: Record<string, string> = { a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"', '?': '?' };

/** bash's `$'…'` escapes: named, octal `\NNN`, hex `\xHH`, Unicode `\uHHHH`/`\UHHHHHHHH`. */
function unescapeAnsiC(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)/g, (_m, e: string) => {
    if (e[0] === 'x' || e[0] === 'u' || e[0] === 'U') return String.fromCodePoint(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8) & 0xff);
    if (e[0] === 'c') return String.fromCharCode(e.charCodeAt(1) & 0x1f);
    return ANSI[e] ?? `\\${e}`;
  });
}
