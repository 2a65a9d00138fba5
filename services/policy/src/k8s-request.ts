import { K8S_UNREADABLE_BODY } from '../../../core/src/config.js';
import type { Command } from '../../../schemas/src/events.js';

/**
 * What a policy rule can match in one Kubernetes API request, as the Kubernetes proxy records it
 * in the command's attributes (`verb`, `resource`, `subresource`, `namespace`, `name`, `api_group`).
 */
export interface K8sRequest {
  /** get, list, watch, create, update, patch, delete, deletecollection (RBAC verbs). */
  verb: string;
  /** Plural resource, with its subresource when there is one: `pods`, `pods/exec`, `secrets`. */
  resource: string;
  /** Empty for cluster-scoped resources. */
  namespace: string;
  name: string;
  /** Empty for the core group. */
  apiGroup: string;
  /** Privilege facts the proxy found (`attributes.privilege`): escalate, bind, token, … */
  privilege: string[];
  /** The body is one the proxy cannot read (`attributes.body: unreadable`): what it does is unknown. */
  unreadableBody: boolean;
  /** A server-side apply (a patch with an `application/apply-patch+…` body): it creates the object when none is stored. */
  apply: boolean;
}

/** The request a Kubernetes command describes, or undefined when its attributes lack verb or resource. */
export function k8sRequest(command: Command): K8sRequest | undefined {
  const a = command.attributes;
  const verb = a.verb?.toLowerCase();
  const resource = a.resource?.toLowerCase();
  if (verb === undefined || verb === '' || resource === undefined || resource === '') return undefined;
  const sub = a.subresource?.toLowerCase();
  return {
    verb, resource: sub ? `${resource}/${sub}` : resource, namespace: a.namespace ?? '', name: a.name ?? '', apiGroup: (a.api_group ?? '').toLowerCase(),
    privilege: a.privilege === undefined || a.privilege === '' ? [] : a.privilege.split(','),
    unreadableBody: a.body === K8S_UNREADABLE_BODY,
    // The API server takes the patch type from the media type exactly; any other spelling is a 415.
    apply: verb === 'patch' && /^\s*application\/apply-patch\b/i.test(a.content_type ?? ''),
  };
}

/** A non-resource request (`/metrics`, `/logs/…`): its lower-cased method and decoded path, as the proxy records them. */
interface K8sPathRequest {
  verb: string;
  path: string;
}

/** The non-resource request a Kubernetes command describes, or undefined when it is a resource request. */
export function k8sPathRequest(command: Command): K8sPathRequest | undefined {
  const a = command.attributes;
  if (a.non_resource !== 'true' || a.path === undefined) return undefined;
  return { verb: (a.verb ?? '').toLowerCase(), path: a.path };
}
