import { MASKED_VALUE } from '../masking/masker.js';
import { duplicateKey } from './json-duplicates.js';
import { ANY_KIND, maskAs, maskDocument, type JsonMaskRules } from './json-mask.js';
import type { RequestInfo } from './request-info.js';
import { readYaml } from './yaml-body.js';

/*
 * A request body as Agate reads it: which kind of object it describes (a patch names none), and
 * its masked copy for the record. Every write form is covered: a whole object (create, update,
 * server-side apply in JSON or YAML), a merge or strategic-merge patch (a partial object), and a
 * JSON patch (a list of operations whose values land at a path of the object).
 */

/** The kinds of the built-in resources, by `group/resource` (the core group is empty). */
const BUILTIN_KINDS: Record<string, string> = {
  '/secrets': 'Secret', '/configmaps': 'ConfigMap', '/pods': 'Pod', '/services': 'Service', '/serviceaccounts': 'ServiceAccount',
  '/namespaces': 'Namespace', '/nodes': 'Node', '/persistentvolumes': 'PersistentVolume', '/persistentvolumeclaims': 'PersistentVolumeClaim',
  '/endpoints': 'Endpoints', '/events': 'Event', '/limitranges': 'LimitRange', '/resourcequotas': 'ResourceQuota',
  '/replicationcontrollers': 'ReplicationController', '/podtemplates': 'PodTemplate',
  'apps/deployments': 'Deployment', 'apps/statefulsets': 'StatefulSet', 'apps/daemonsets': 'DaemonSet', 'apps/replicasets': 'ReplicaSet',
  'apps/controllerrevisions': 'ControllerRevision', 'batch/jobs': 'Job', 'batch/cronjobs': 'CronJob',
  'rbac.authorization.k8s.io/roles': 'Role', 'rbac.authorization.k8s.io/clusterroles': 'ClusterRole',
  'rbac.authorization.k8s.io/rolebindings': 'RoleBinding', 'rbac.authorization.k8s.io/clusterrolebindings': 'ClusterRoleBinding',
  'networking.k8s.io/ingresses': 'Ingress', 'networking.k8s.io/networkpolicies': 'NetworkPolicy',
  'certificates.k8s.io/certificatesigningrequests': 'CertificateSigningRequest', 'policy/poddisruptionbudgets': 'PodDisruptionBudget',
  'storage.k8s.io/storageclasses': 'StorageClass', 'autoscaling/horizontalpodautoscalers': 'HorizontalPodAutoscaler',
  'coordination.k8s.io/leases': 'Lease', 'apiextensions.k8s.io/customresourcedefinitions': 'CustomResourceDefinition',
  'admissionregistration.k8s.io/mutatingwebhookconfigurations': 'MutatingWebhookConfiguration',
  'admissionregistration.k8s.io/validatingwebhookconfigurations': 'ValidatingWebhookConfiguration',
};

/**
 * The kind of the object a request body describes, from the resource it is addressed to; a
 * subresource other than `status` (`scale`, `eviction`, `token`) carries its own kind, read from
 * the body. ANY_KIND: a resource Agate cannot name, so every configured field rule applies.
 */
export function addressedKind(info: RequestInfo): string | typeof ANY_KIND | undefined {
  if (info.kind !== 'resource') return undefined;
  if (info.subresource !== '' && info.subresource !== 'status') return undefined;
  return BUILTIN_KINDS[`${info.apiGroup}/${info.resource}`] ?? ANY_KIND;
}

/**
 * `searchable`: an opaque body whose raw bytes show every string whole (protobuf, not
 * content-encoded), so a name in it is found by searching them. Any other opaque body is
 * unreadable: it may spell what Agate looks for so the bytes never show it.
 */
export type ReadBody = { kind: 'parsed'; doc: unknown; patch: 'json' | 'object' } | { kind: 'opaque'; why: string; searchable: boolean };

export function isJson(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/([a-z0-9.+-]*\+)?json\b/i.test(contentType.trim());
}

/** Protobuf keeps every string whole and unescaped. */
const PROTOBUF = /^application\/vnd\.kubernetes\.protobuf\b/i;
const JSON_PATCH = /^application\/json-patch\+json\b/i;
const YAML = /^application\/([a-z0-9.+-]*\+)?yaml\b/i;

/**
 * Parses a request body Agate can read: JSON in any of its media types, and YAML (server-side
 * apply and `application/yaml` creates). Protobuf and CBOR stay opaque: they are digested, never
 * copied, since their Secret data cannot be found and masked. A body with a `Content-Encoding`
 * (the API server decodes none) is opaque whatever its type: its bytes are not what they say.
 */
export function readBody(body: Buffer, contentType: string | undefined, contentEncoding?: string): ReadBody {
  const type = contentType?.trim() ?? '';
  if (contentEncoding !== undefined && !/^\s*identity\s*$/i.test(contentEncoding)) {
    return { kind: 'opaque', why: `${body.length} bytes of ${contentType ?? 'unknown type'} encoded as ${contentEncoding.slice(0, 40)}`, searchable: false };
  }
  const yaml = YAML.test(type);
  if (!yaml && !isJson(type)) return { kind: 'opaque', why: `${body.length} bytes of ${contentType ?? 'unknown type'}`, searchable: PROTOBUF.test(type) };
  let doc: unknown;
  const text = body.toString('utf8');
  if (yaml) {
    // A repeated key, an alias, a merge key or a tag: the API server reads it differently.
    const read = readYaml(text);
    if (read.kind === 'unreadable') return { kind: 'opaque', why: `${body.length} bytes of ${read.why}`, searchable: false };
    doc = read.doc;
  } else {
    try {
      doc = JSON.parse(text);
    } catch {
      return { kind: 'opaque', why: `${body.length} bytes of invalid JSON`, searchable: false };
    }
  }
  // Go's JSON decoder stops at 10,000 levels; Agate's walks of the object recurse.
  if (deeperThan(doc, MAX_DEPTH)) return { kind: 'opaque', why: `${body.length} bytes nested deeper than ${MAX_DEPTH} levels`, searchable: false };
  const repeated = yaml ? undefined : duplicateKey(text);
  if (repeated !== undefined) return { kind: 'opaque', why: `${body.length} bytes of JSON with the key ${JSON.stringify(repeated)} twice in one object, which the API server reads differently`, searchable: false };
  return { kind: 'parsed', doc, patch: JSON_PATCH.test(type) || Array.isArray(doc) ? 'json' : 'object' };
}

/** How deep a body may nest: no Kubernetes object comes near it. */
const MAX_DEPTH = 1000;

/** Whether a parsed value nests arrays or objects more than `limit` levels deep (walked without recursion). */
function deeperThan(doc: unknown, limit: number): boolean {
  const pending: Array<[unknown, number]> = [[doc, 0]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [node, depth] = next;
    if (node === null || typeof node !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Object.values(node)) pending.push([child, depth + 1]);
  }
  return false;
}

/**
 * Masks a parsed request body in place for the record: as the object of its addressed kind
 * (and of the kind it names itself), or, for a JSON patch, each operation's value as it would
 * sit in that object. Returns how many values were masked.
 */
export function maskRequestBody(body: Extract<ReadBody, { kind: 'parsed' }>, info: RequestInfo, rules: JsonMaskRules): number {
  const kind = addressedKind(info);
  if (body.patch === 'object') return (kind === undefined ? 0 : maskAs(body.doc, kind, rules)) + maskDocument(body.doc, rules);
  if (!Array.isArray(body.doc)) return maskDocument(body.doc, rules);
  let n = 0;
  for (const op of body.doc) {
    if (!isObject(op) || !('value' in op)) continue;
    const path = typeof op.path === 'string' ? pointer(op.path) : undefined;
    if (path === undefined) {
      // A path that is not a JSON pointer: the API server refuses it, the record keeps no value.
      op.value = '[masked]';
      n += 1;
      continue;
    }
    const placed = place(path, op.value);
    n += (kind === undefined ? 0 : maskAs(placed, kind, rules)) + maskDocument(placed, rules);
    op.value = pick(placed, path);
  }
  return n;
}

/** RFC 6901 JSON pointer: `/data/tls.key`, `/metadata/annotations/a~1b` (`~1` is `/`, `~0` is `~`). */
export function pointer(text: string): string[] | undefined {
  if (text === '') return [];
  if (!text.startsWith('/')) return undefined;
  return text.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The value set into an otherwise empty object at `path` (array indexes become keys: rules match `*` either way). */
function place(path: string[], value: unknown): unknown {
  let node = value;
  for (let i = path.length - 1; i >= 0; i--) node = { [path[i]!]: node };
  return node;
}

function pick(node: unknown, path: string[]): unknown {
  for (const seg of path) node = (node as Record<string, unknown>)[seg];
  return node;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A masked Secret value as clients read it: base64 of the marker. */
const MASKED_B64 = Buffer.from(MASKED_VALUE).toString('base64');
const DETECTED = /\[masked:[a-z0-9_-]+\]/;
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** JSON patch ops that only write the value they carry. */
const WRITING_OPS = new Set(['add', 'replace', 'remove']);

/**
 * The operations of a JSON patch that read a stored value (`copy` and `move` take it `from` one
 * place to another, `test` answers whether it equals a guess), each as `op from|path`. Masking
 * knows where a value is stored, not where a patch puts it: a Secret's data copied into an
 * annotation comes back unmasked. Any op but add, replace and remove counts (an unknown one too).
 */
export function valueReadingOps(read: ReadBody): string[] {
  if (read.kind !== 'parsed' || read.patch !== 'json' || !Array.isArray(read.doc)) return [];
  const found: string[] = [];
  for (const op of read.doc) {
    const name = isObject(op) && typeof op.op === 'string' ? op.op : '';
    if (WRITING_OPS.has(name)) continue;
    const where = isObject(op) ? (op.from ?? op.path) : undefined;
    found.push(`${name === '' ? '(no op)' : name.slice(0, 20)} ${typeof where === 'string' ? where.slice(0, 120) : ''}`.trim());
  }
  return found;
}

/**
 * Where a write body carries Agate's mask marker (`[masked]`, its base64 in Secret data, a
 * detector's `[masked:kind]`): the fields, as dotted paths. Such a body is a masked read sent back
 * (`kubectl get -o yaml | kubectl replace -f -`); forwarding it would store the marker in place of
 * the real value. An opaque body (protobuf) is searched as bytes.
 */
export function maskMarkers(read: ReadBody, raw: Buffer): string[] {
  if (read.kind === 'opaque') return raw.includes(MASKED_VALUE) || raw.includes(MASKED_B64) ? ['(the request body)'] : [];
  const found: string[] = [];
  if (read.patch === 'json' && Array.isArray(read.doc)) {
    for (const op of read.doc) if (isObject(op) && 'value' in op) markers(op.value, String(op.path ?? '').slice(1).replace(/\//g, '.'), found);
  } else {
    markers(read.doc, '', found);
  }
  return found;
}

function markers(node: unknown, path: string, found: string[]): void {
  const at = (key: string | number) => (path === '' ? String(key) : `${path}.${key}`);
  if (typeof node === 'string') {
    if (node === MASKED_VALUE || node === MASKED_B64 || DETECTED.test(node)) found.push(path === '' ? '(the value)' : path);
  } else if (Array.isArray(node)) {
    node.forEach((v, i) => markers(v, at(i), found));
  } else if (isObject(node)) {
    for (const [k, v] of Object.entries(node)) {
      if (k === LAST_APPLIED && typeof v === 'string' && path.endsWith('annotations')) {
        // kubectl apply embeds the whole object here: a marker inside would be applied back later.
        let inner: unknown;
        try {
          inner = JSON.parse(v);
        } catch {
          inner = v;
        }
        markers(inner, `${at(k)}`, found);
      } else {
        markers(v, at(k), found);
      }
    }
  }
}
