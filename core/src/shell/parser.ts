import { createRequire } from 'node:module';
import { Language, Parser, type Tree } from 'web-tree-sitter';

/*
 * The bash grammar of tree-sitter, compiled to WASM. Loading is asynchronous and happens once
 * (`initShellParser` at service start); parsing afterwards is synchronous, so the policy's hot
 * path never awaits. One parser instance is enough: Node runs one parse at a time.
 */
let loading: Promise<void> | undefined;
let parser: Parser | undefined;

/** Loads the WASM runtime and the bash grammar; call once before `analyzeShell`. */
export function initShellParser(): Promise<void> {
  loading ??= (async () => {
    await Parser.init();
    const wasm = createRequire(import.meta.url).resolve('tree-sitter-bash/tree-sitter-bash.wasm');
    const p = new Parser();
    p.setLanguage(await Language.load(wasm));
    parser = p;
  })();
  return loading;
}

/** True once `initShellParser` has finished. */
export function shellParserLoaded(): boolean {
  return parser !== undefined;
}

/** Parses `text` as a bash script; the caller must `delete()` the tree (it lives in WASM memory). */
export function parseBash(text: string): Tree {
  if (parser === undefined) throw new Error('the shell parser is not loaded: await initShellParser() at startup');
  const tree = parser.parse(text);
  if (tree === null) throw new Error('the shell parser returned no tree');
  return tree;
}
