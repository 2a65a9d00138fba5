import type { Node } from 'web-tree-sitter';
import { wordValue } from './words.js';

/**
 * Where bash reads a value as code although the line shows it as data. Arithmetic evaluates a
 * variable's value as an expression, and an array subscript in that value is expanded like a
 * word, command substitution included: with `x='a[$(rm f)]'`, `echo $((x))`, `(( x ))`,
 * `[[ $x -eq 1 ]]`, `let x`, `${a[x]}`, `${v:x}`, `${!x}`, `declare -n r=$x`, `printf -v "$x"`
 * and `read "$x"` all run rm. The value may come from the line, a file or another command's
 * output, so such a context is unreadable unless what it evaluates is literal (numbers, names
 * without a subscript).
 */
export function evaluatedValue(root: Node): string | undefined {
  const pending: Node[] = [root];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    const why = evaluated(node);
    if (why !== undefined) return why;
    for (const c of node.children) if (c !== null) pending.push(c);
  }
  return undefined;
}

function evaluated(node: Node): string | undefined {
  switch (node.type) {
    case 'arithmetic_expansion':
      return arithmetic(node.text.replace(/^\$\(\(|\)\)$|^\$\[|\]$/g, ''), node.text);
    case 'compound_statement':
      return node.firstChild?.type === '((' ? arithmetic(node.text.slice(2, -2), node.text) : undefined;
    case 'c_style_for_statement':
      return arithmetic(node.text.slice(node.text.indexOf('((') + 2, node.text.indexOf('))')), '`for ((…))`');
    case 'binary_expression': // only `[[ … ]]` has test operators
      return arithmeticTest(node);
    case 'unary_expression':
      return node.child(0)?.text === '-v' ? name(node.lastChild, '`[[ -v NAME ]]`') : undefined;
    case 'subscript':
      return index(node.childForFieldName('index'), node.text);
    case 'expansion':
      return expansion(node);
    case 'declaration_command':
    case 'unset_command':
      return declaration(node);
    case 'command':
      return builtin(node);
    default:
      return undefined;
  }
}

const WHY = 'bash evaluates it as arithmetic or a variable name, and an array subscript in a value runs the command substitution in it';

/**
 * Only numbers and operators: no variable read (whose value would be evaluated), no expansion.
 * A name only assigned (`i=0`) is not read.
 */
function arithmetic(expression: string, what: string): string | undefined {
  const rest = expression.replace(/(?<![\w\]])[A-Za-z_]\w*\s*=(?!=)/g, '').replace(/\b(?:0[xX][0-9a-fA-F]+|\d+#[0-9A-Za-z@_]+|\d+)\b/g, '');
  return /^[\s+\-*/%()<>=!&|^~?:,]*$/.test(rest) ? undefined : `${what}: ${WHY}`;
}

const ARITHMETIC_TESTS = new Set(['-eq', '-ne', '-lt', '-le', '-gt', '-ge']);

/** `[[ A -eq B ]]` evaluates both sides as arithmetic (`[ A -eq B ]`, the test builtin, reads numbers only). */
function arithmeticTest(node: Node): string | undefined {
  const operator = node.childForFieldName('operator')?.text;
  if (operator === undefined || !ARITHMETIC_TESTS.has(operator)) return undefined;
  let test: Node | null = node.parent;
  while (test !== null && test.type !== 'test_command') test = test.parent;
  if (test?.firstChild?.type !== '[[') return undefined;
  for (const side of [node.childForFieldName('left'), node.childForFieldName('right')]) {
    const why = side === null ? undefined : arithmetic(side.text, `\`[[ … ${operator} … ]]\``);
    if (why !== undefined) return why;
  }
  return undefined;
}

/** A subscript bash evaluates: a number, `@` or `*` only (an associative array's key too, as Agate cannot tell). */
function index(node: Node | null, what: string): string | undefined {
  if (node === null) return undefined;
  return /^(?:\d+|@|\*)$/.test(node.text) ? undefined : `${what}: ${WHY}`;
}

/** A name bash looks up: literal, without a subscript. */
function name(node: Node | null, what: string): string | undefined {
  if (node === null) return undefined;
  const value = wordValue(node);
  return value !== undefined && !value.includes('[') ? undefined : `${what} names ${JSON.stringify(node.text)}: ${WHY}`;
}

/** `${!x}` (indirection) and `${v:OFFSET:LENGTH}` evaluate a value; `${!prefix*}` and `${!a[@]}` list names. */
function expansion(node: Node): string | undefined {
  const parts = node.children.filter((c): c is Node => c !== null);
  if (parts[1]?.type === '!' && !/(?:[*@]|\[[*@]\])\}$/.test(node.text)) return `${node.text}: ${WHY}`;
  for (let i = 0; i < parts.length - 1; i++) {
    if (parts[i]!.type === ':' && parts[i + 1]!.type !== 'number' && parts[i + 1]!.type !== '}') return arithmetic(parts[i + 1]!.text, node.text);
  }
  return undefined;
}

const TYPED_DECLARATIONS = /^(?:declare|typeset|local)\s/;

/** declare/typeset/local/export/readonly/unset: names literal; no `-i` (later values evaluated) or `-n` (a name's value looked up). */
function declaration(node: Node): string | undefined {
  for (const c of node.namedChildren) {
    if (c === null) continue;
    if (c.type === 'word' && TYPED_DECLARATIONS.test(node.text) && /^[-+][A-Za-z]*[in]/.test(c.text)) return `${node.text.split(/\s+/, 1)[0]} ${c.text}: ${WHY}`;
    if (c.type === 'word' && c.text.startsWith('-')) continue;
    if (c.type === 'variable_assignment') continue; // its name is a variable_name or a subscript, checked as such
    const why = name(c, `\`${node.text.split(/\s+/, 1)[0]}\``);
    if (why !== undefined) return why;
  }
  return undefined;
}

/** Builtins that take variable names (after their options) or evaluate their operands. */
const NAME_OPERANDS = new Set(['read', 'mapfile', 'readarray', 'getopts']);
const NAME_AFTER: Record<string, string> = { printf: '-v', wait: '-p', test: '-v', '[': '-v' };

function builtin(node: Node): string | undefined {
  const program = node.childForFieldName('name');
  const command = program === null ? undefined : wordValue(program);
  if (command === undefined) return undefined;
  const args = node.childrenForFieldName('argument').filter((a): a is Node => a !== null);
  if (command === 'let') {
    for (const a of args) {
      const value = wordValue(a);
      const why = value === undefined ? `let ${a.text}: ${WHY}` : arithmetic(value.replace(/^[A-Za-z_]\w*(?==)/, ''), `let ${a.text}`);
      if (why !== undefined) return why;
    }
  }
  if (NAME_OPERANDS.has(command)) {
    for (const a of args) {
      if (a.type === 'word' && a.text.startsWith('-')) continue;
      const why = name(a, `\`${command}\``);
      if (why !== undefined) return why;
    }
  }
  const flag = NAME_AFTER[command];
  if (flag !== undefined) {
    const at = args.findIndex((a) => a.text === flag);
    if (at >= 0 && at + 1 < args.length) return name(args[at + 1]!, `\`${command} ${flag}\``);
  }
  return undefined;
}
