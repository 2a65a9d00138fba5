import type avro from 'avsc';

/*
 * Random values of an Avro type, for the tests that compare a compiled writer with the generic
 * one (plain-writer.test.ts, the ledger's json-body.test.ts): strings around the lengths where
 * writers change strategy, every UTF-8 width, JSON's escapes, surrogates alone and paired.
 */

/** A small deterministic generator (xorshift32), so a failure names a seed that repeats it. */
export function random(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Characters of every UTF-8 length, quotes and controls, and surrogates paired and alone. */
const ALPHABET = ['a', 'Z', '0', ' ', '"', '\\', '\n', '\u0000', '\u007f', 'é', '\u07ff', '\u0800', '€', '\uffff', '😀', '\ud83d', '\ude00'];

function randomString(r: () => number): string {
  // Around the 64-byte line where avsc changes how it writes, and far past it.
  const length = [0, 1, 5, 31, 32, 63, 64, 65, 100, 300][Math.floor(r() * 10)]!;
  const ascii = r() < 0.5;
  let s = '';
  for (let i = 0; i < length; i++) s += ascii ? String.fromCharCode(0x20 + Math.floor(r() * 95)) : ALPHABET[Math.floor(r() * ALPHABET.length)]!;
  return s;
}

function randomLong(r: () => number): number {
  const magnitude = [1, 63, 64, 2 ** 13, 2 ** 30, 2 ** 31, 2 ** 40, 2 ** 53][Math.floor(r() * 8)]!;
  const n = Math.min(Math.floor(r() * magnitude), 9007199254740990);
  return r() < 0.3 ? -n : n;
}

/** A random value of an avsc type; a field with a default is sometimes left out. */
export function randomValue(type: avro.Type, r: () => number): unknown {
  switch (type.typeName) {
    case 'null': return null;
    case 'boolean': return r() < 0.5;
    case 'int': return Math.floor((r() - 0.5) * 2 ** 32) | 0;
    case 'long': return randomLong(r);
    case 'string': return randomString(r);
    case 'enum': {
      const symbols = (type as avro.types.EnumType).symbols;
      return symbols[Math.floor(r() * symbols.length)];
    }
    case 'array': return Array.from({ length: Math.floor(r() * 4) }, () => randomValue((type as avro.types.ArrayType).itemsType, r));
    case 'map': {
      const out: Record<string, unknown> = {};
      for (let i = Math.floor(r() * 5); i > 0; i--) out[randomString(r)] = randomValue((type as avro.types.MapType).valuesType, r);
      return out;
    }
    case 'union:unwrapped': {
      const branches = (type as unknown as { types: avro.Type[] }).types;
      return randomValue(branches[Math.floor(r() * branches.length)]!, r);
    }
    case 'record': {
      const out: Record<string, unknown> = {};
      for (const f of (type as avro.types.RecordType).fields) {
        if (f.defaultValue() !== undefined && r() < 0.2) continue;
        out[f.name] = randomValue(f.type, r);
      }
      return out;
    }
    default: throw new Error(`no generator for ${type.typeName}`);
  }
}

