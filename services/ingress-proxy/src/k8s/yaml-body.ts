import { isScalar, parseDocument, visit } from 'yaml';

/** A YAML request body as Agate reads it, or why it cannot read it as the API server would. */
export type YamlRead = { kind: 'parsed'; doc: unknown } | { kind: 'unreadable'; why: string };

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
  try {
    return { kind: 'parsed', doc: document.toJS({ maxAliasCount: 0 }) };
  } catch {
    return { kind: 'unreadable', why: 'YAML Agate cannot parse' };
  }
}
