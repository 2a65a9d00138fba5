import { K8S_UNRECORDED_INPUT } from '../../../../core/src/config.js';
import type { Identity } from '../../../../schemas/src/events.js';
import { requestAttributes, type RequestInfo, type ResourceRequest } from './request-info.js';

/*
 * `kubectl auth can-i` and `kubectl auth whoami` ask the API server about the caller, and through
 * Agate the caller the API server sees is Agate (usually system:masters): every question would be
 * answered "yes" and every whoami with Agate's name. The proxy answers for the agent instead: its
 * own identity, and each access question decided by Agate's policy as well as by the API server.
 */

type ReviewKind = 'access' | 'rules' | 'self';

const REVIEWS: Record<string, ReviewKind> = {
  'authorization.k8s.io/selfsubjectaccessreviews': 'access',
  'authorization.k8s.io/selfsubjectrulesreviews': 'rules',
  'authentication.k8s.io/selfsubjectreviews': 'self',
};

/** Which self-review a request is, if any (they are all `create`). */
export function reviewKind(info: RequestInfo): ReviewKind | undefined {
  if (info.kind !== 'resource' || info.verb !== 'create' || info.subresource !== '') return undefined;
  return REVIEWS[`${info.apiGroup}/${info.resource}`];
}

/** The request a SelfSubjectAccessReview asks about, as policy reads a request; undefined: unreadable. */
export interface Question {
  text: string;
  info: RequestInfo;
}

/**
 * The question in a SelfSubjectAccessReview body: `spec.resourceAttributes` (verb, group,
 * resource, subresource, namespace, name) or `spec.nonResourceAttributes` (verb, path).
 */
export function accessQuestion(doc: unknown): Question | undefined {
  const spec = isObject(doc) && isObject(doc.spec) ? doc.spec : undefined;
  if (spec === undefined) return undefined;
  if (isObject(spec.resourceAttributes)) {
    const a = spec.resourceAttributes;
    const group = str(a.group);
    const info: ResourceRequest = {
      kind: 'resource', verb: str(a.verb).toLowerCase(), apiPrefix: group === '' ? 'api' : 'apis', apiGroup: group, apiVersion: str(a.version),
      namespace: str(a.namespace), resource: str(a.resource).toLowerCase(), subresource: str(a.subresource).toLowerCase(), name: str(a.name), path: '',
    };
    if (info.verb === '' || info.resource === '') return undefined;
    const res = info.subresource === '' ? info.resource : `${info.resource}/${info.subresource}`;
    const where = `${info.name === '' ? '' : ` "${info.name}"`}${info.namespace === '' ? '' : ` in namespace "${info.namespace}"`}`;
    return { text: `can-i ${info.verb} ${res}${group === '' ? '' : `.${group}`}${where}`, info };
  }
  if (isObject(spec.nonResourceAttributes)) {
    const a = spec.nonResourceAttributes;
    const verb = str(a.verb).toLowerCase();
    const path = str(a.path);
    if (verb === '' || path === '') return undefined;
    return { text: `can-i ${verb} ${path}`, info: { kind: 'non-resource', verb, path } };
  }
  return undefined;
}

/** The attributes of the question's command: a request descriptor, marked as a question. */
export function questionAttributes(q: Question, privilege: readonly string[]): Record<string, string> {
  const a = requestAttributes(q.info);
  a.access_review = 'self';
  if (privilege.length > 0) a.privilege = privilege.join(',');
  // RBAC's exec, attach, port-forward and proxy include sending input, which policy decides as
  // unrecorded input (engine.ts `carriesInput`): the answer is the one a stream with input gets.
  if (q.info.kind === 'resource' && (STREAMS.has(q.info.subresource) || q.info.verb === 'proxy')) a.input = K8S_UNRECORDED_INPUT;
  return a;
}

/** Subresources whose RBAC permission covers a stream carrying the client's input. */
const STREAMS = new Set(['exec', 'attach', 'portforward', 'proxy']);

/** What Agate's policy said about the question. */
export type PolicyAnswer =
  | { kind: 'allow'; reason: string }
  | { kind: 'deny' | 'hold'; rule: string | null; reason: string }
  | { kind: 'unknown'; reason: string };

/**
 * A SelfSubjectAccessReview as the agent may act: allowed only when both the API server (for
 * Agate's credential) and Agate's policy allow it; the reason says which refused.
 */
export function combineAccess(doc: unknown, answer: PolicyAnswer): void {
  if (!isObject(doc)) return;
  const status = isObject(doc.status) ? doc.status : (doc.status = {});
  if (answer.kind === 'allow') return;
  const by = answer.kind === 'unknown' ? '' : answer.rule === null ? ' by the policy default' : ` by rule "${answer.rule}"`;
  status.allowed = false;
  if (answer.kind === 'deny') {
    status.denied = true;
    status.reason = `Agate refuses it${by}: ${answer.reason}`;
  } else if (answer.kind === 'hold') {
    delete status.denied;
    status.reason = `Agate holds it for approval${by}: ${answer.reason}`;
  } else {
    delete status.denied;
    status.reason = `Agate cannot say: ${answer.reason}`;
  }
}

/** A SelfSubjectReview naming the agent, as Agate authenticated it. */
export function selfReview(doc: unknown, identity: Identity): void {
  if (!isObject(doc)) return;
  const status = isObject(doc.status) ? doc.status : (doc.status = {});
  status.userInfo = { username: identity.subject, extra: { 'agate.io/issuer': [identity.issuer] } };
}

/**
 * A SelfSubjectRulesReview lists what RBAC grants, and RBAC rules only add: Agate's refusals
 * cannot be written in them. The list is kept (it is what the API server grants Agate) and marked
 * incomplete, as the API server does when it cannot say everything.
 */
export function rulesReview(doc: unknown): void {
  if (!isObject(doc)) return;
  const status = isObject(doc.status) ? doc.status : (doc.status = {});
  status.incomplete = true;
  status.evaluationError = 'these are the API server\'s rules for Agate\'s credential; Agate\'s policy may refuse any of them: ask about one request with kubectl auth can-i VERB RESOURCE';
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
