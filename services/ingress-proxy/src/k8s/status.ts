import type { RequestInfo } from './request-info.js';

/** The reasons Agate answers with (metav1.StatusReason values kubectl knows how to print). */
type StatusReason = 'Unauthorized' | 'Forbidden' | 'BadRequest' | 'Invalid' | 'MethodNotAllowed' | 'RequestEntityTooLarge' | 'ServiceUnavailable' | 'InternalError' | 'Timeout' | 'TooManyRequests';

/** A `metav1.Status` object: the error form every Kubernetes client understands. */
export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: StatusReason;
  details?: { name?: string; group?: string; kind?: string; causes?: { reason: string; message: string; field?: string }[] };
  code: number;
}

const CODES: Record<StatusReason, number> = {
  Unauthorized: 401, Forbidden: 403, BadRequest: 400, Invalid: 422, MethodNotAllowed: 405, RequestEntityTooLarge: 413, ServiceUnavailable: 503, InternalError: 500, Timeout: 504, TooManyRequests: 429,
};

/**
 * A failure Status. `code` overrides the reason's usual HTTP code (a 502 for an upstream that
 * cannot be reached is still reason ServiceUnavailable, say). With a resource request, details
 * name the object the way the API server's own Forbidden does, so kubectl prints
 * `Error from server (Forbidden): <message>`.
 */
export function failure(reason: StatusReason, message: string, info?: RequestInfo, code = CODES[reason]): Status {
  const status: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (info?.kind === 'resource') {
    status.details = { kind: info.subresource === '' ? info.resource : `${info.resource}/${info.subresource}` };
    if (info.name !== '') status.details.name = info.name;
    if (info.apiGroup !== '') status.details.group = info.apiGroup;
  }
  return status;
}

/** The Status kubectl shows for a refused request: names the rule and its reason. */
export function forbidden(info: RequestInfo, rule: string | null, reason: string): Status {
  const what = info.kind === 'resource' ? describe(info) : `${info.verb} ${info.path}`;
  const by = rule === null ? 'the policy default' : `rule "${rule}"`;
  return failure('Forbidden', `Agate refused ${what} by ${by}: ${reason}`, info);
}

function describe(info: Extract<RequestInfo, { kind: 'resource' }>): string {
  const res = info.subresource === '' ? info.resource : `${info.resource}/${info.subresource}`;
  const group = info.apiGroup === '' ? '' : `.${info.apiGroup}`;
  const name = info.name === '' ? '' : ` "${info.name}"`;
  const ns = info.namespace === '' || info.resource === 'namespaces' ? '' : ` in namespace "${info.namespace}"`;
  return `${info.verb} ${res}${group}${name}${ns}`;
}

/**
 * The Status of a write that carries Agate's mask marker: 422 Invalid with one cause per field,
 * which kubectl prints as `The <kind> "<name>" is invalid: <field>: <message>`.
 */
export function maskedWrite(info: RequestInfo, fields: readonly string[]): Status {
  const message = 'holds the value Agate masked when it was read, not the real one; refused so the stored value is not overwritten with the mask (send the real value, or leave the field out)';
  const status = failure('Invalid', `Agate refused the write: ${fields.join(', ')} ${message}`, info);
  status.details = { ...status.details, causes: fields.map((field) => ({ reason: 'FieldValueInvalid', message: `Agate refused the write: this field ${message}`, field })) };
  return status;
}

/** A JSON patch that would read a value the client only sees masked (see request-body.ts `valueReadingOps`). */
export function maskedRead(info: RequestInfo, ops: readonly string[]): Status {
  return failure('Forbidden', `Agate refused the JSON patch: its answer is masked for you, and ${ops.join(', ')} would copy, move or test a stored value where masking does not follow it (only add, replace and remove are allowed here)`, info);
}

export function statusBody(status: Status): Buffer {
  return Buffer.from(JSON.stringify(status));
}
