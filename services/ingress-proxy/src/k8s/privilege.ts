import type { IncomingHttpHeaders } from 'node:http';
import { K8S_PRIVILEGE_FACTS } from '../../../../core/src/config.js';
import { impersonates } from './headers.js';
import { pointer, type ReadBody } from './request-body.js';
import type { RequestInfo } from './request-info.js';

/**
 * What a request changes about who can do what in the cluster. Agate reaches the API server
 * with its own, usually all-powerful, credential, so the API server's own guards (RBAC's
 * `escalate` and `bind` checks, who may impersonate, approve a CSR or mint a token) never stop
 * the agent: policy has to see these as what they are. Recorded as `attributes.privilege` (a
 * comma-separated list) and matched by `match.kubernetes.privilege`.
 */
type PrivilegeFact =
  /** Creating, changing or deleting a Role or ClusterRole (RBAC's `escalate`). */
  | 'escalate'
  /** Creating, changing or deleting a RoleBinding or ClusterRoleBinding (RBAC's `bind`). */
  | 'bind'
  /** `Impersonate-*` headers (`kubectl --as`), or front-proxy `X-Remote-*` headers. */
  | 'impersonate'
  /** Creating, changing or deleting a ServiceAccount: an identity a token can then be minted for. */
  | 'serviceaccount'
  /** A token minted (`serviceaccounts/token`, `kubectl create token`), or a service-account-token Secret written. */
  | 'token'
  /** A CertificateSigningRequest written (a client certificate for any name the signer accepts), or its status (the issued certificate). */
  | 'csr'
  /** A CSR approved or denied (`certificatesigningrequests/approval`). */
  | 'csr-approval'
  /** A namespace's finalizers rewritten (`namespaces/finalize`): it is deleted without its cleanup. */
  | 'finalize'
  /**
   * A patch or update whose body sets `metadata.finalizers`: removing them skips the owner's
   * cleanup. (An update that leaves the field out clears it too, which only the stored object
   * could tell: that is not a fact here.)
   */
  | 'finalizers'
  /**
   * A Mutating- or ValidatingWebhookConfiguration or an APIService written, or a CRD write naming
   * its conversion: the API server then sends the objects it admits (Secrets with their data),
   * every request of an API group, or a CRD's custom resources to an address the writer chooses.
   */
  | 'webhook'
  /**
   * A Validating- or MutatingAdmissionPolicy or a binding of one written: CEL the API server runs
   * on the requests it matches, everyone's, with any object it names as parameters (a Secret,
   * read with the API server's own privilege); its messages answer the request and a mutation
   * writes into the object, so a Secret's value can reach the writer in an error of its own
   * request or in an object it may read. Deleting one removes a guard the operator set.
   */
  | 'admission-policy'
  /**
   * A ClusterTrustBundle written: a set of CA certificates pods mount (a projected volume by
   * name, or by signer and labels) and trust, so a CA of the writer's choosing lets it stand in
   * for any server those workloads call. Deleting one removes trust, not a guard: not counted.
   */
  | 'trust-bundle'
  /**
   * A pod, or a workload's pod template, given the node it runs on: the node's PID, IPC or network
   * namespace, a privileged container, added capabilities, an unmasked /proc, a Windows host
   * process, a host path mounted (`kubectl debug node/…` creates such a pod). Its containers are
   * root on the node, with every other pod's processes and files there: exec by another door.
   */
  | 'host';

/** The config's list (what `match.kubernetes.privilege` accepts) must name exactly these; a test checks. */
export const PRIVILEGE_FACTS: readonly PrivilegeFact[] = K8S_PRIVILEGE_FACTS;

const RBAC = 'rbac.authorization.k8s.io';
const WRITES = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);
const SA_TOKEN_TYPE = 'kubernetes.io/service-account-token';
const WEBHOOK_CONFIGURATIONS = new Set(['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']);
const ADMISSION_POLICIES = new Set(['validatingadmissionpolicies', 'validatingadmissionpolicybindings', 'mutatingadmissionpolicies', 'mutatingadmissionpolicybindings']);

/** The privilege facts of one request, from its descriptor, headers and (readable or raw) body. */
export function privilegeFacts(info: RequestInfo, headers: IncomingHttpHeaders, read: ReadBody | undefined, raw: Buffer | undefined): PrivilegeFact[] {
  const facts = new Set<PrivilegeFact>();
  if (impersonates(headers)) facts.add('impersonate');
  if (info.kind !== 'resource' || !WRITES.has(info.verb)) return [...facts];
  const { apiGroup: group, resource, subresource: sub, verb } = info;
  if (group === RBAC && (resource === 'roles' || resource === 'clusterroles')) facts.add('escalate');
  if (group === RBAC && (resource === 'rolebindings' || resource === 'clusterrolebindings')) facts.add('bind');
  if (group === '' && resource === 'serviceaccounts') facts.add(sub === 'token' ? 'token' : 'serviceaccount');
  if (group === '' && resource === 'secrets' && verb !== 'delete' && verb !== 'deletecollection' && namesTokenType(read, raw)) facts.add('token');
  if (group === 'certificates.k8s.io' && resource === 'certificatesigningrequests') facts.add(sub === 'approval' ? 'csr-approval' : 'csr');
  if (group === '' && resource === 'namespaces' && sub === 'finalize') facts.add('finalize');
  if ((verb === 'update' || verb === 'patch') && setsFinalizers(read)) facts.add('finalizers');
  if (group === 'admissionregistration.k8s.io' && WEBHOOK_CONFIGURATIONS.has(resource)) facts.add('webhook');
  if (group === 'apiregistration.k8s.io' && resource === 'apiservices') facts.add('webhook');
  if (group === 'admissionregistration.k8s.io' && ADMISSION_POLICIES.has(resource)) facts.add('admission-policy');
  if (group === 'certificates.k8s.io' && resource === 'clustertrustbundles' && verb !== 'delete' && verb !== 'deletecollection') facts.add('trust-bundle');
  if (verb !== 'delete' && verb !== 'deletecollection' && sub === '' && POD_TEMPLATES.has(`${group}/${resource}`) && givesHost(read)) facts.add('host');
  if (group === 'apiextensions.k8s.io' && resource === 'customresourcedefinitions' && verb !== 'delete' && verb !== 'deletecollection' && namesConversion(read, raw)) facts.add('webhook');
  return [...facts];
}

/** Resources that are or carry a pod spec (`group/resource`, the core group empty). */
const POD_TEMPLATES = new Set([
  '/pods', '/podtemplates', '/replicationcontrollers', 'apps/deployments', 'apps/statefulsets', 'apps/daemonsets', 'apps/replicasets', 'batch/jobs', 'batch/cronjobs',
]);

/** Pod and container fields that give the node; each counts when set to anything but false (or `Default`, for procMount). */
const HOST_FIELDS = new Set(['hostPID', 'hostIPC', 'hostNetwork', 'privileged', 'hostProcess', 'hostPath', 'procMount', 'capabilities']);

/**
 * Whether a pod or workload write gives a container the node (see `host`). The fields are looked
 * for by name anywhere in the body, so a pod template at any depth counts; a value other than
 * `false`, `null` (or `Default`, or capabilities that add none) counts, so a YAML `yes` (true to
 * the API server, which reads YAML 1.1) does. A JSON patch counts by the values it writes and by
 * a path naming one of the fields; a body Agate cannot read counts.
 */
function givesHost(read: ReadBody | undefined): boolean {
  if (read === undefined) return false;
  if (read.kind === 'opaque') return true;
  if (read.patch === 'json' && Array.isArray(read.doc)) {
    return read.doc.some((op) => {
      if (!isObject(op)) return true;
      const path = typeof op.path === 'string' ? pointer(op.path) : undefined;
      if (path === undefined) return true;
      if (op.op === 'copy' || op.op === 'move') return true; // a value taken from elsewhere
      const last = path.at(-1);
      return (last !== undefined && HOST_FIELDS.has(last) && op.op !== 'remove' && op.op !== 'test' && hostValue(last, op.value)) || hostIn(op.value);
    });
  }
  return hostIn(read.doc);
}

function hostIn(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(hostIn);
  if (!isObject(node)) return false;
  return Object.entries(node).some(([k, v]) => (HOST_FIELDS.has(k) && hostValue(k, v)) || hostIn(v));
}

function hostValue(field: string, value: unknown): boolean {
  if (value === false || value === null || value === undefined) return false;
  if (field === 'procMount') return value !== 'Default';
  if (field === 'capabilities') return !isObject(value) || (value.add !== undefined && value.add !== null && !(Array.isArray(value.add) && value.add.length === 0));
  return true;
}

/*
 * A searchable body (protobuf) shows a string value whole in its raw bytes (field names it has
 * none). Any other body Agate could not parse (YAML with aliases, CBOR with chunked strings,
 * escapes, JSON with a repeated key, a compressed body) may spell the value so the bytes never
 * show it: it counts as naming it (fail closed).
 */

/** A Secret of type service-account-token: the token controller fills it with a token for the named account. */
function namesTokenType(read: ReadBody | undefined, raw: Buffer | undefined): boolean {
  if (read?.kind === 'parsed') return JSON.stringify(read.doc).includes(SA_TOKEN_TYPE);
  if (read?.kind === 'opaque' && !read.searchable) return true;
  return raw !== undefined && raw.includes(SA_TOKEN_TYPE);
}

/**
 * A CRD write that may give it a conversion webhook: an object naming the `Webhook` strategy or a
 * `webhook`, a JSON patch op at or from its conversion (a value can be moved there), or a body
 * Agate cannot read. `conversion: {strategy: None}`, as every stored CRD has, is not one.
 */
function namesConversion(read: ReadBody | undefined, raw: Buffer | undefined): boolean {
  if (read?.kind === 'parsed') {
    if (read.patch === 'json' && Array.isArray(read.doc)) {
      return read.doc.some((op) => !isObject(op) || [op.path, op.from].some((p) => p !== undefined && (typeof p !== 'string' || p.includes('conversion'))));
    }
    const text = JSON.stringify(read.doc);
    return text.includes('Webhook') || text.includes('"webhook"');
  }
  if (read?.kind === 'opaque' && !read.searchable) return true;
  return raw !== undefined && raw.includes('Webhook');
}

/**
 * Whether a write body sets `metadata.finalizers` (or replaces all of metadata, or the whole
 * object). Protobuf names fields by number, so its bytes never show `finalizers`: it counts.
 */
function setsFinalizers(read: ReadBody | undefined): boolean {
  if (read === undefined) return false;
  if (read.kind === 'opaque') return true;
  if (read.patch === 'json' && Array.isArray(read.doc)) return read.doc.some(opSetsFinalizers);
  return objectSetsFinalizers(read.doc);
}

/**
 * A JSON patch op writing finalizers, metadata or the whole object (replacing metadata without
 * them clears them), or moving a finalizer out (`move` removes its `from`).
 */
function opSetsFinalizers(op: unknown): boolean {
  if (!isObject(op)) return true; // the API server refuses it anyway
  const touches = (where: unknown): boolean => {
    const path = typeof where === 'string' ? pointer(where) : undefined;
    // Unreadable paths count: the API server refuses them anyway.
    if (path === undefined) return true;
    if (path.length === 0 || (path.length === 1 && path[0] === 'metadata')) return op.op !== 'test';
    return path[0] === 'metadata' && path[1] === 'finalizers';
  };
  return touches(op.path) || (op.op === 'move' && touches(op.from));
}

/**
 * A whole object, merge or strategic-merge patch, or apply configuration naming finalizers. A
 * strategic-merge patch can change them without the key `finalizers`: by a directive key
 * (`$deleteFromPrimitiveList/finalizers`, `$setElementOrder/finalizers`), or by replacing
 * metadata or the object whole (`$patch: replace` or `delete`, `$retainKeys`).
 */
function objectSetsFinalizers(doc: unknown): boolean {
  if (!isObject(doc)) return false;
  if ('$patch' in doc || '$retainKeys' in doc) return true;
  if (!('metadata' in doc)) return false;
  const metadata = doc.metadata;
  // A merge patch's null removes metadata, finalizers included.
  if (!isObject(metadata)) return true;
  return Object.keys(metadata).some((k) => k === 'finalizers' || k.endsWith('/finalizers') || k === '$patch' || k === '$retainKeys');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
