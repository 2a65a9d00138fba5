/**
 * What one Kubernetes API request asks for, worked out the way the API server's own
 * `RequestInfoFactory` does (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go), so policy sees
 * the same verb, resource and namespace that RBAC would.
 */
export type RequestInfo = ResourceRequest | NonResourceRequest;

export interface ResourceRequest {
  kind: 'resource';
  /** RBAC verb: get, list, watch, create, update, patch, delete, deletecollection, proxy ('' for other methods). */
  verb: string;
  /** `api` (the core group) or `apis`. */
  apiPrefix: string;
  /** Empty for the core group. */
  apiGroup: string;
  apiVersion: string;
  /** Empty for cluster-scoped resources and for requests across all namespaces. */
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  path: string;
}

interface NonResourceRequest {
  kind: 'non-resource';
  /** The lower-cased HTTP method, as the API server records it for non-resource URLs. */
  verb: string;
  path: string;
}

/** A path the API server itself refuses to interpret (`/api/v1/watch` with nothing after it). */
interface InvalidRequest {
  kind: 'invalid';
  message: string;
}

const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS_PREFIXES = new Set(['api']);
/** Verbs that may lead the path: `/api/v1/watch/…`, `/api/v1/proxy/…`. */
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(['proxy']);
/** Subresources of a namespace itself: `/api/v1/namespaces/x/status` is the namespace's status. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

const METHOD_VERBS: Record<string, string> = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

/**
 * Classifies a request from its method and request target (path and query).
 *
 * @example
 * classifyRequest('DELETE', '/api/v1/namespaces/prod')
 * // { kind: 'resource', verb: 'delete', resource: 'namespaces', name: 'prod', namespace: 'prod', … }
 */
export function classifyRequest(method: string, target: string | URL): RequestInfo | InvalidRequest {
  const url = typeof target === 'string' ? parseTarget(target) : target;
  // The API server splits the decoded path (Go's URL.Path): `namespaces%2Fx` is two segments there,
  // so it must be two here, or a rule on the namespace could be stepped around.
  let path: string;
  try {
    path = decodeURIComponent(url.pathname);
  } catch {
    return { kind: 'invalid', message: `the path ${url.pathname} is not valid percent-encoding` };
  }
  const nonResource: NonResourceRequest = { kind: 'non-resource', verb: method.toLowerCase(), path };
  let parts = splitPath(path);
  if (parts.length < 3 || !API_PREFIXES.has(parts[0]!)) return nonResource;
  const apiPrefix = parts[0]!;
  parts = parts.slice(1);
  let apiGroup = '';
  if (!GROUPLESS_PREFIXES.has(apiPrefix)) {
    // The prefix is consumed: a group request needs group, version and resource.
    if (parts.length < 3) return nonResource;
    apiGroup = parts[0]!;
    parts = parts.slice(1);
  }
  const apiVersion = parts[0]!;
  parts = parts.slice(1);
  let verb: string;
  if (SPECIAL_VERBS.has(parts[0]!)) {
    if (parts.length < 2) return { kind: 'invalid', message: `unable to determine kind and namespace from url ${path}` };
    verb = parts[0]!;
    parts = parts.slice(1);
  } else {
    verb = METHOD_VERBS[method.toUpperCase()] ?? '';
  }
  let namespace = '';
  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      namespace = parts[1]!;
      // `/namespaces/x/pods/…` is about pods in x; `/namespaces/x/status` about namespace x.
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
    }
  }
  const resource = parts[0] ?? '';
  let name = parts[1] ?? '';
  const subresource = parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(verb) ? parts[2]! : '';
  if (name === '' && verb === 'get') {
    verb = watchParam(url.searchParams.get('watch')) ? 'watch' : 'list';
    name = exactName(url.searchParams.get('fieldSelector')) ?? '';
  }
  if (name === '' && verb === 'delete') verb = 'deletecollection';
  return { kind: 'resource', verb, apiPrefix, apiGroup, apiVersion, namespace, resource, subresource, name, path };
}

/**
 * A query parameter the API server would not see, or undefined. Go's query parser (which the API
 * server uses for its verb, its name and every option) drops a `&`-separated pair that contains a
 * `;` or a `%` not followed by two hex digits, where the URL standard Agate parses by keeps both:
 * `?fieldSelector=metadata.name%3Dx,a%3D;` names object x to Agate and lists every object at the
 * API server. Such a request is refused rather than decided on what the API server ignores.
 */
export function droppedParameter(url: URL): string | undefined {
  for (const pair of url.search.slice(1).split('&')) {
    if (pair.includes(';')) return `the query parameter "${pair.slice(0, 80)}" contains ";", so the API server would ignore it`;
    if (/%(?![0-9a-f]{2})/i.test(pair)) return `the query parameter "${pair.slice(0, 80)}" is not valid percent-encoding, so the API server would ignore it`;
  }
  return undefined;
}

/**
 * The request target Agate forwards: `.` and `..` segments resolved, so the API server is asked
 * for exactly the path that was classified and decided (it would not resolve them itself).
 */
export function normalizedTarget(target: string | URL): string {
  const url = typeof target === 'string' ? parseTarget(target) : target;
  return `${url.pathname}${url.search}`;
}

/** A request target (path and query) as a URL: parsed once per request for both functions above. */
export function parseTarget(target: string): URL {
  return new URL(target, 'http://agate.invalid');
}

/**
 * The command text recorded for a request: method and path, plus a query when it narrows the
 * request. `target` is the normalized one ({@link normalizedTarget}), the very path forwarded.
 */
export function requestText(method: string, target: string): string {
  return `${method.toUpperCase()} ${target}`;
}

/**
 * The request text with what `mask` finds masked, also where the API server decodes it: each
 * query value with its percent escapes and `+` read, and the path with its escapes read. kubectl
 * sends an exec's command as `command=echo+KEY%3DAKIA…`, where no detector sees the key. A part
 * whose decoded form shows a secret is recorded decoded, masked, and escaped again; then the
 * whole is masked as sent.
 *
 * @example
 * maskedRequestText('GET /exec?command=KEY%3DAKIA…', (t) => masker.maskText(t))
 * // 'GET /exec?command=KEY%3D[masked:cloud_access_key]'
 */
export function maskedRequestText(text: string, mask: (text: string) => { text: string; count: number }): string {
  const q = text.indexOf('?');
  const head = q < 0 ? text : text.slice(0, q);
  const query = q < 0 ? undefined : text.slice(q + 1);
  const space = head.indexOf(' ');
  const path = maskPart(head.slice(space + 1), mask, false);
  const masked = `${head.slice(0, space + 1)}${path}`;
  if (query === undefined) return mask(masked).text;
  const pairs = query.split('&').map((pair) => {
    const eq = pair.indexOf('=');
    return eq < 0 ? maskPart(pair, mask, true) : `${maskPart(pair.slice(0, eq), mask, true)}=${maskPart(pair.slice(eq + 1), mask, true)}`;
  });
  // Then the whole as sent: a secret may span parts (`?password=…`).
  return mask(`${masked}?${pairs.join('&')}`).text;
}

/** One part of a target as sent, or, when its decoded form shows a secret, decoded, masked and escaped again. */
function maskPart(raw: string, mask: (text: string) => { text: string; count: number }, query: boolean): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(query ? raw.replace(/\+/g, ' ') : raw);
  } catch {
    return raw;
  }
  if (decoded === raw) return raw;
  const m = mask(decoded);
  if (m.count === 0) return raw;
  const escape = (s: string) => encodeURIComponent(s).replace(/%5B|%5D|%3A/g, decodeURIComponent);
  return query ? escape(m.text) : m.text.split('/').map(escape).join('/');
}

/** Attributes the policy engine reads (services/policy/src/k8s-request.ts). */
export function requestAttributes(info: RequestInfo): Record<string, string> {
  if (info.kind === 'non-resource') return { verb: info.verb, path: info.path, non_resource: 'true' };
  const a: Record<string, string> = { verb: info.verb, resource: info.resource, api_group: info.apiGroup, api_version: info.apiVersion };
  if (info.subresource !== '') a.subresource = info.subresource;
  if (info.namespace !== '') a.namespace = info.namespace;
  if (info.name !== '') a.name = info.name;
  return a;
}

function splitPath(path: string): string[] {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? [] : trimmed.split('/');
}

/**
 * The `watch` query parameter as the API server decodes it (apimachinery's
 * `Convert_Slice_string_To_bool`, also its fallback when other parameters fail to decode): present
 * with any value but `0` or `false` (any case) is true, so `watch=yes`, `watch=` and a bare
 * `watch` are watches. Go's `strconv.ParseBool` is not what it uses.
 */
function watchParam(value: string | null): boolean {
  return value !== null && value !== '0' && value.toLowerCase() !== 'false';
}

/** `metadata.name=x` (or `==`) in a field selector names one object, as `RequiresExactMatch` reads it. */
function exactName(selector: string | null): string | undefined {
  if (selector === null) return undefined;
  for (const term of selector.split(',')) {
    const m = /^\s*metadata\.name\s*==?\s*(.*?)\s*$/.exec(term);
    if (m === null) continue;
    const name = m[1]!;
    // path.IsValidPathSegmentName: no '.', '..', and no '/' or '%'.
    if (name === '.' || name === '..' || /[/%]/.test(name)) return undefined;
    return name;
  }
  return undefined;
}
