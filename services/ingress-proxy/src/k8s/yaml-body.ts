import { isDeepStrictEqual } from 'node:util';
import { isScalar, parseDocument, visit } from 'yaml';

/** A YAML request body as Agate reads it, or why it cannot read it as the API server would. */
type YamlRead = { kind: 'parsed'; doc: unknown } | { kind: 'unreadable'; why: string };

/**
 * Parses a YAML request body the way the API server's decoder reads it, or says why it cannot.
 * The API server reads YAML as YAML 1.1 (go-yaml v2 behind sigs.k8s.io/yaml), this parser as
 * YAML 1.2; where the two differ on what a key or value is, Agate would decide on another
 * object than the one stored. Three forms differ and are unreadable here (fail closed):
 * - a merge key `<<`, which the API server merges into its map (`metadata: {<<: {finalizers: […]}}`
 *   adds finalizers no key names);
 * - an explicit tag (`!!binary` decodes base64 to a string there, so `type: !!binary …` is a
 *   service-account-token Secret whose body never shows the type; other tags resolve differently
 *   between the two versions);
 * - a key that is not a scalar.
 * A plain scalar read otherwise by YAML 1.1 (`yes`, `on`, `y`, `0755`, `1_000`, a date) is unreadable
 * too: the document is read both ways and must come out the same.
 * Aliases (which could expand to anything) and repeated keys (the API server keeps one) are
 * refused by the parse itself. Kubernetes clients send none of these forms.
 */
export function readYaml(text: string): YamlRead {
  const document = parseDocument(text, { uniqueKeys: true });
  if (document.errors.length > 0) return { kind: 'unreadable', why: 'YAML Agate cannot parse' };
  let why: string | undefined;
  visit(document, {
    Alias() {
      why = 'YAML with an alias, which may stand for anything';
      return visit.BREAK;
    },
    Node(_, node) {
      if (node.tag === undefined) return undefined;
      why = `YAML with the explicit tag ${node.tag.slice(0, 60)}, which the API server resolves as YAML 1.1`;
      return visit.BREAK;
    },
    Pair(_, pair) {
      if (!isScalar(pair.key)) {
        why = 'YAML with a key that is not a scalar';
        return visit.BREAK;
      }
      if (pair.key.value === '<<') {
        why = 'YAML with a merge key (<<), which the API server merges into its map';
        return visit.BREAK;
      }
      return undefined;
    },
  });
  if (why !== undefined) return { kind: 'unreadable', why };
  let doc: unknown;
  try {
    doc = document.toJS({ maxAliasCount: 0 });
    // A plain scalar YAML 1.1 resolves otherwise: `yes`, `on`, `y` (true), `0755` (octal), `1_000`,
    // a date. A key `y` is stored as "true", `replicas: 010` as 8: not what Agate would record.
    const old = parseDocument(text, { uniqueKeys: true, version: '1.1' });
    if (old.errors.length > 0 || !isDeepStrictEqual(old.toJS({ maxAliasCount: 0 }), doc)) {
      return { kind: 'unreadable', why: 'YAML with a plain value the API server, reading YAML 1.1, reads otherwise (yes, on, y, 0755, 1_000, a date: quote it)' };
    }
  } catch {
    return { kind: 'unreadable', why: 'YAML Agate cannot parse' };
  }
  return { kind: 'parsed', doc };
}
