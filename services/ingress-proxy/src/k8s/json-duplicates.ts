/**
 * The first key that appears twice in one object of a JSON text, or undefined. JSON.parse keeps
 * the last value of a repeated key; the API server's Go decoder does not always: a later `null`
 * leaves a string or struct field as the first value set it, a later object is decoded into the
 * same struct or map (merged, not replaced). So a body with a repeated key means one thing to
 * Agate's checks and another to the API server, and Agate treats it as unreadable.
 *
 * `text` must be JSON that JSON.parse accepted: this only walks its tokens. Keys are compared
 * after unescaping (`"a"` and `"\u0061"` are the same key, to Go too) and case-sensitively, as
 * the API server's decoder (sigs.k8s.io/json) matches them.
 *
 * @example
 * duplicateKey('{"type":"a","type":null}') // 'type'
 */
export function duplicateKey(text: string): string | undefined {
  // One entry per open object (its keys so far) or array (undefined).
  const open: Array<Set<string> | undefined> = [];
  let keyNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = i + 1;
      while (text.charCodeAt(end) !== QUOTE) end += text.charCodeAt(end) === BACKSLASH ? 2 : 1;
      if (keyNext) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        const keys = open.at(-1)!;
        if (keys.has(key)) return key;
        keys.add(key);
        keyNext = false;
      }
      i = end;
    } else if (c === OPEN_BRACE) {
      open.push(new Set());
      keyNext = true;
    } else if (c === OPEN_BRACKET) {
      open.push(undefined);
      keyNext = false;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      open.pop();
      keyNext = false;
    } else if (c === COMMA) {
      keyNext = open.at(-1) !== undefined;
    }
  }
  return undefined;
}

const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
const OPEN_BRACE = 0x7b; // {
const CLOSE_BRACE = 0x7d; // }
const OPEN_BRACKET = 0x5b; // [
const CLOSE_BRACKET = 0x5d; // ]
const COMMA = 0x2c; // ,
