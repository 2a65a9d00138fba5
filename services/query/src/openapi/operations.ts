import { z } from 'zod';
import {
  Approval, ApprovalDecision, AuthFailure, Command, CommandDetail, ConsistencyProof, CountBucket, ErrorBody, InclusionProof, Row, Session, StoredCheckpoint,
  TimelineEvent, TimelineRow,
} from './schemas.js';

/*
 * What each route of the query API takes and answers, described with zod: the source of the
 * OpenAPI document (document.ts). Keyed by the router's own method and path, so a test can hold
 * the served routes and the documented ones equal (tools/openapi.test.ts).
 */

export interface ResponseDoc {
  description: string;
  /** Media type → body schema. */
  content?: Record<string, z.ZodType>;
}

export interface Operation {
  method: 'GET' | 'POST';
  /** As the router spells it: `/v1/sessions/:id`. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  /** Served without a bearer token. */
  public?: true;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: { required: boolean; content: Record<string, z.ZodType> };
  /** A status → its response; `'error'` is the shared error response (a stable code and a message). */
  responses: Record<number, ResponseDoc | 'error'>;
}

const FORMAT = z.enum(['json', 'ndjson', 'csv']).optional().describe('Answer format; overrides the Accept header.');
const CURSOR = z.string().optional().describe('The next_cursor of the previous page (also sent as the X-Next-Cursor header).');
const limit = (fallback: number, max: number) => z.number().int().min(1).max(max).default(fallback).optional().describe('Rows per page.');
const text = (what: string) => z.string().min(1).max(1024).optional().describe(what);
const time = (what: string) => z.string().meta({ format: 'date-time' }).optional().describe(what);
const PROTOCOL = z.enum(['postgres', 'ssh', 'kubernetes']).optional().describe('Protocol.');
const CHAIN = z.string().min(1).max(1024).meta({ example: 'embedded' }).optional().describe('Ledger chain; may be left out when the ledger has only one.');
const id = (what: string) => z.object({ id: z.string().min(1).describe(what) });

/** A list answered as JSON (`{key: [...], next_cursor}`), NDJSON (one row per line) or CSV. */
function rows(description: string, key: string, row: z.ZodType, extra: Record<string, z.ZodType> = {}): ResponseDoc {
  return {
    description,
    content: {
      'application/json': z.object({ [key]: z.array(row), next_cursor: z.string().nullable(), ...extra }),
      'application/x-ndjson': z.string(),
      'text/csv': z.string(),
    },
  };
}

const json = (description: string, body: z.ZodType): ResponseDoc => ({ description, content: { 'application/json': body } });
const errorAs = (description: string): ResponseDoc => json(description, ErrorBody);

const HEALTH = z.object({
  status: z.enum(['ok', 'unavailable']).optional(),
  problems: z.array(z.object({ component: z.string().optional(), problem: z.string().optional() })).optional(),
});

const ANSWER_BODY = { required: false, content: { 'application/json': z.object({ comment: z.string().max(2000).nullable().optional() }) } };
const ANSWERED = json('the answer was recorded and accepted', z.object({
  approval_id: z.string(),
  decision_id: z.string(),
  decision: z.enum(['approve', 'deny']),
  recorded: z.boolean(),
}));
const APPROVAL_ID = id('approval id (from the hold notice or GET /v1/approvals)');

function answer(decision: 'approve' | 'deny'): Operation {
  return {
    method: 'POST', path: `/v1/approvals/:id/${decision}`, operationId: `${decision}Approval`,
    summary: `${decision === 'approve' ? 'Approve' : 'Deny'} a held command (role: approver; never the identity that ran it)`,
    description: 'The answer is recorded in the ledger as an ApprovalDecision event, also when it is refused; the policy service counts distinct approvers and issues the final verdict.',
    params: APPROVAL_ID,
    body: ANSWER_BODY,
    responses: {
      200: ANSWERED, 400: 'error', 401: 'error', 403: 'error', 404: 'error',
      409: errorAs('the approval is no longer pending (API_CONFLICT)'),
      503: errorAs('this query service has no bus (API_UNAVAILABLE)'),
    },
  };
}

export const OPERATIONS: readonly Operation[] = [
  {
    method: 'GET', path: '/healthz', operationId: 'health', public: true,
    summary: 'Liveness: fails when a component of the process has stopped (a bus consumer that cannot read its log)',
    responses: { 200: json('alive', HEALTH), 503: json('a component stopped; problems say which and why', HEALTH) },
  },
  {
    method: 'GET', path: '/readyz', operationId: 'ready', public: true,
    summary: 'Readiness: fails while any component cannot do its work (e.g. the ledger refuses a store that is behind its published checkpoints)',
    responses: { 200: json('ready', HEALTH), 503: json('not ready; problems say which component and why', HEALTH) },
  },
  {
    method: 'GET', path: '/openapi.json', operationId: 'openapi', public: true,
    summary: 'This document',
    responses: { 200: json('the OpenAPI document', z.object({})) },
  },
  {
    method: 'GET', path: '/v1/sessions', operationId: 'listSessions',
    summary: 'Sessions, newest first (role: analyst, auditor, admin)',
    query: z.object({
      subject: text('Identity subject, exact.'),
      issuer: text('Token issuer, exact.'),
      target: text('Target name, exact.'),
      protocol: PROTOCOL,
      claim: z.array(z.string().max(1024).regex(/^[^:]+:.*$/)).optional().describe("NAME:VALUE; the session's identity must carry that claim value. Repeatable."),
      verdict: z.enum(['allow', 'deny', 'hold', 'mask']).optional().describe('Sessions with at least one verdict of this decision.'),
      from: time('Opened at or after (RFC 3339).'),
      to: time('Opened before (RFC 3339).'),
      before: time('Legacy cursor: opened strictly before this time.'),
      limit: limit(100, 1000),
      cursor: CURSOR,
      format: FORMAT,
    }),
    responses: { 200: rows('a page of sessions', 'sessions', Session, { next_before: z.string().nullable().optional() }), 400: 'error', 401: 'error', 403: 'error' },
  },
  {
    method: 'GET', path: '/v1/sessions/:id', operationId: 'getSession',
    summary: 'A session with its commands, verdicts and responses',
    params: id('session id'),
    responses: { 200: json('the session', z.object({ session: Session, commands: z.array(TimelineRow) })), 400: 'error', 401: 'error', 403: 'error', 404: 'error' },
  },
  {
    method: 'GET', path: '/v1/sessions/:id/commands', operationId: 'sessionCommands',
    summary: "A session's commands in order",
    params: id('session id'),
    query: z.object({ format: FORMAT }),
    responses: { 200: rows('commands', 'commands', TimelineRow), 400: 'error', 401: 'error', 403: 'error' },
  },
  {
    method: 'GET', path: '/v1/sessions/:id/recordings', operationId: 'sessionRecordings',
    summary: 'The interactive SSH shells of a session as asciicast v2 recordings (masked as recorded)',
    params: id('session id'),
    responses: {
      200: json('the recordings', z.object({
        recordings: z.array(z.object({
          command_id: z.string().describe("the shell's Command"),
          header: z.object({
            version: z.literal(2).meta({ type: 'integer' }),
            width: z.number().int(),
            height: z.number().int(),
            timestamp: z.number().int(),
            env: z.record(z.string(), z.string()).optional(),
            title: z.string().optional(),
          }).describe('asciicast v2 header: version 2, width, height, timestamp (Unix seconds), env.TERM, title'),
          events: z.array(z.array(z.union([z.number(), z.string()])).min(3).max(3)).describe('[seconds, code (o output, i input, r resize), data]'),
          truncated: z.boolean(),
        })),
      })),
      400: 'error', 401: 'error', 403: 'error', 404: 'error',
    },
  },
  {
    method: 'GET', path: '/v1/sessions/:id/timeline', operationId: 'sessionTimeline',
    summary: 'Commands, verdicts, approvals and responses of a session in ledger order',
    params: id('session id'),
    query: z.object({ limit: limit(1000, 10000), cursor: CURSOR, format: FORMAT }),
    responses: { 200: rows('events', 'events', TimelineEvent), 400: 'error', 401: 'error', 403: 'error', 404: 'error' },
  },
  {
    method: 'GET', path: '/v1/commands', operationId: 'searchCommands',
    summary: 'Text search over commands, newest first',
    query: z.object({
      q: text('Case-insensitive substring of the command text.'),
      subject: text('Identity subject.'),
      target: text('Target name.'),
      protocol: PROTOCOL,
      session_id: text('Only this session.'),
      from: time('At or after (RFC 3339).'),
      to: time('Before (RFC 3339).'),
      limit: limit(100, 1000),
      cursor: CURSOR,
      format: FORMAT,
    }),
    responses: { 200: rows('matching commands', 'commands', Command), 400: 'error', 401: 'error', 403: 'error' },
  },
  {
    method: 'GET', path: '/v1/commands/:id', operationId: 'getCommand',
    summary: 'A command with its verdict, response, approvals and ledger position',
    params: id('command id'),
    responses: { 200: json('the command', z.object({ command: CommandDetail })), 400: 'error', 401: 'error', 403: 'error', 404: 'error' },
  },
  {
    method: 'GET', path: '/v1/stats/commands', operationId: 'commandCounts',
    summary: 'Commands per time bucket with their verdicts',
    query: z.object({
      interval: z.enum(['minute', 'hour', 'day']).default('hour').optional().describe('Bucket width.'),
      from: time('Start (RFC 3339); default 24 buckets before `to`.'),
      to: time('End (RFC 3339). Default: now, or with `from` alone the end of the 1500th bucket after `from` if that is earlier. At most 1500 buckets per answer (400 beyond).'),
      subject: text('Identity subject.'),
      target: text('Target name.'),
      format: FORMAT,
    }),
    responses: { 200: rows('buckets, oldest first', 'buckets', CountBucket, { interval: z.string().optional() }), 400: 'error', 401: 'error', 403: 'error' },
  },
  {
    method: 'POST', path: '/v1/sql', operationId: 'sql',
    summary: 'Read-only SQL over the analyst views (role: analyst, admin)',
    description: 'ClickHouse dialect. Runs with readonly=1 and the configured max_execution_time, max_result_rows and max_memory_usage. Views: agate.sessions, agate.commands, agate.verdicts, agate.responses, agate.approvals, agate.approval_requests, agate.checkpoints, agate.auth_failures, agate.session_index.',
    query: z.object({ format: FORMAT }),
    body: {
      required: true,
      content: {
        'application/json': z.object({ sql: z.string().min(1).max(65536) }),
        'text/plain': z.string().min(1).max(65536),
      },
    },
    responses: { 200: rows('result rows', 'rows', Row), 422: errorAs('a limit stopped the query (SQL_LIMIT_EXCEEDED)'), 400: 'error', 401: 'error', 403: 'error' },
  },
  {
    method: 'GET', path: '/v1/export/chains', operationId: 'exportChains',
    summary: 'Ledger chains',
    responses: { 200: json('chain ids', z.object({ chains: z.array(z.string()) })), 401: 'error', 403: 'error' },
  },
  {
    method: 'GET', path: '/v1/export/ocsf', operationId: 'exportOcsf',
    summary: 'OCSF events after a ledger position, as NDJSON (role: analyst, auditor, admin)',
    query: z.object({
      chain: z.string().min(1).max(1024).meta({ example: 'embedded' }).optional().describe('Ledger chain.'),
      after: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0).optional().describe('Ledger position (seq) already delivered.'),
      limit: limit(500, 5000),
    }),
    responses: {
      200: { description: 'one OCSF event per line; metadata.sequence is the ledger position', content: { 'application/x-ndjson': z.string() } },
      400: 'error', 401: 'error', 403: 'error',
    },
  },
  {
    method: 'GET', path: '/v1/auth-failures', operationId: 'authFailures',
    summary: 'Refused logins, newest first',
    query: z.object({ limit: limit(100, 1000), format: FORMAT }),
    responses: { 200: rows('refused logins', 'auth_failures', AuthFailure), 400: 'error', 401: 'error', 403: 'error' },
  },
  {
    method: 'GET', path: '/v1/ledger/verify', operationId: 'verifyLedger',
    summary: 'Recompute the hash chains, check them against the signed checkpoints in the store and the checkpoint directory, and compare the session tables and statement facts with the ledger',
    responses: {
      200: json('a report per chain', z.object({
        ok: z.boolean(),
        chains: z.array(z.object({})),
        sessions: z
          .object({ ok: z.boolean().optional(), sessions: z.number().int().optional(), problem: z.string().nullable().optional() })
          .nullable()
          .optional()
          .describe('the session tables behind agate.sessions compared with the ledger (null when the store has none)'),
        facts: z
          .object({ ok: z.boolean().optional(), commands: z.number().int().optional(), problem: z.string().nullable().optional() })
          .nullable()
          .optional()
          .describe('the statement facts behind agate.activity and agate.table_access worked out again from the recorded commands (null when the store has none)'),
      })),
      401: 'error', 403: 'error',
    },
  },
  {
    method: 'GET', path: '/v1/ledger/checkpoint', operationId: 'latestCheckpoint',
    summary: 'The latest signed checkpoint of a chain (role: analyst, auditor, admin)',
    query: z.object({ chain: CHAIN }),
    responses: { 200: json('the checkpoint', StoredCheckpoint), 400: 'error', 401: 'error', 403: 'error', 404: 'error' },
  },
  {
    method: 'GET', path: '/v1/ledger/checkpoints', operationId: 'listCheckpoints',
    summary: 'Stored signed checkpoints of a chain, largest first',
    query: z.object({ chain: CHAIN, limit: limit(100, 1000) }),
    responses: { 200: json('checkpoints', z.object({ checkpoints: z.array(StoredCheckpoint) })), 400: 'error', 401: 'error', 403: 'error' },
  },
  {
    method: 'GET', path: '/v1/ledger/proof/:event_id', operationId: 'inclusionProof',
    summary: 'An inclusion proof of one recorded event, against the latest checkpoint or a stored one of the given size',
    params: z.object({ event_id: z.string().min(1).describe('the event to prove') }),
    query: z.object({ chain: CHAIN, size: z.number().int().min(1).optional().describe('Prove against the stored checkpoint of this tree size.') }),
    responses: { 200: json('the proof', InclusionProof), 400: 'error', 401: 'error', 403: 'error', 404: 'error' },
  },
  {
    method: 'GET', path: '/v1/ledger/consistency', operationId: 'consistencyProof',
    summary: 'A consistency proof between two stored checkpoints of a chain',
    query: z.object({
      chain: CHAIN,
      old: z.number().int().min(1).describe('Tree size of the older stored checkpoint.'),
      new: z.number().int().min(1).describe('Tree size of the newer stored checkpoint.'),
    }),
    responses: { 200: json('the proof', ConsistencyProof), 400: 'error', 401: 'error', 403: 'error', 404: 'error' },
  },
  {
    method: 'GET', path: '/v1/approvals', operationId: 'listApprovals',
    summary: 'Commands held by a hold rule, newest first, with their approval state (role: approver, analyst, auditor, admin)',
    query: z.object({
      status: z.enum(['pending', 'approved', 'denied', 'expired']).optional().describe('Only approvals in this state.'),
      limit: limit(100, 1000),
      format: FORMAT,
    }),
    responses: { 200: rows('approvals', 'approvals', Approval), 400: 'error', 401: 'error', 403: 'error' },
  },
  {
    method: 'GET', path: '/v1/approvals/:id', operationId: 'getApproval',
    summary: 'One approval with every answer given to it, refused attempts included',
    params: APPROVAL_ID,
    responses: {
      200: json('the approval', z.object({
        approval: Approval,
        decisions: z.array(ApprovalDecision).describe('the answers that counted'),
        refusals: z.array(ApprovalDecision).describe('refused attempts, each with its refused_reason; recorded, never answers'),
      })),
      400: 'error', 401: 'error', 403: 'error', 404: 'error',
    },
  },
  answer('approve'),
  answer('deny'),
  {
    method: 'GET', path: '/v1/policy', operationId: 'policy',
    summary: 'The policy in force: revision, default and rules (role: analyst, auditor, admin)',
    description: 'Read from the config file, re-read when it changes; an edit the policy service refuses is reported in reload_error and the previous policy stays.',
    responses: {
      200: json('the policy in force', z.object({
        revision: z.string(),
        default: z.enum(['allow', 'deny']),
        rules: z.array(z.object({}).loose()),
        mask_sets: z.array(z.string()),
        reload_error: z.string().nullable(),
      })),
      401: 'error', 403: 'error', 503: 'error',
    },
  },
  {
    method: 'POST', path: '/v1/policy/test', operationId: 'policyTest',
    summary: 'The verdict the policy in force gives one command (what agate policy test prints)',
    body: {
      required: true,
      content: {
        'application/json': z.object({
          text: z.string().min(1),
          protocol: z.enum(['postgres', 'ssh', 'kubernetes']).optional(),
          target: z.string().min(1).optional(),
          subject: z.string().min(1).optional(),
          issuer: z.string().min(1).optional(),
          claims: z.record(z.string(), z.string()).optional(),
        }),
      },
    },
    responses: {
      200: json('the verdict', z.object({
        decision: z.enum(['allow', 'deny', 'hold', 'mask']),
        rule_id: z.string().nullable(),
        reason: z.string(),
        mask_set: z.string().nullable().optional(),
        approval: z.object({}).loose().nullable().optional(),
        policy_revision: z.string().optional(),
        shell_commands: z.array(z.object({}).loose()).nullable().optional(),
      })),
      400: 'error', 401: 'error', 403: 'error',
    },
  },
  {
    method: 'POST', path: '/v1/policy/backtest', operationId: 'policyBacktest',
    summary: 'Run a candidate policy over the commands recorded in a period and list every verdict it would change (role: analyst, auditor, admin)',
    description: 'The candidate is YAML (or JSON) text: a policy section or a whole agate.yaml. Each recorded command is compared with the first verdict policy gave it (a hold, not its approval outcome). One backtest runs at a time per query service (409 otherwise).',
    body: {
      required: true,
      content: {
        'application/json': z.object({
          candidate: z.string().min(1).max(1 << 20),
          source: z.string().min(1).optional().describe('name used in error messages'),
          since: z.string().describe('30d, 12h, 90m, 2w back from now, or an ISO 8601 time'),
          until: z.string().optional(),
          max_commands: z.number().int().min(1).max(10_000_000).optional(),
        }),
      },
    },
    responses: {
      200: json('the changed verdicts', z.object({
        since: z.string().optional(),
        until: z.string().optional(),
        candidate_revision: z.string().optional(),
        examined: z.number().int(),
        changed: z.number().int(),
        transitions: z.record(z.string(), z.number().int()),
        unanswered: z.number().int().optional(),
        truncated: z.boolean().optional(),
        examined_until: z.string().nullable().optional(),
        changes_truncated: z.boolean().optional(),
        changes: z.array(z.object({
          command_id: z.string().optional(),
          session_id: z.string().optional(),
          time: z.string().optional(),
          protocol: z.string().optional(),
          target: z.string().optional(),
          subject: z.string().optional(),
          text: z.string().optional(),
          recorded: z.object({}).loose().optional(),
          candidate: z.object({}).loose().optional(),
        })),
      })),
      400: 'error', 401: 'error', 403: 'error', 409: 'error',
    },
  },
  {
    method: 'POST', path: '/v1/sessions/:id/terminate', operationId: 'terminateSession',
    summary: 'End a live session (role: admin)',
    description: "The proxy holding the session closes the client's connection with the protocol's own error and records SessionClosed whose reason names the admin and the reason; the answer comes once that event is durable. A proxy of this process is asked directly; in distributed mode a SessionTerminationRequested goes on the bus for every proxy, and a 504 (API_TIMEOUT) answers when no SessionClosed follows within 10 s (the request stays recorded).",
    params: id('session id'),
    body: { required: true, content: { 'application/json': z.object({ reason: z.string().min(1).max(500) }) } },
    responses: {
      200: json('terminated and recorded', z.object({ session_id: z.string(), terminated: z.boolean(), reason: z.string() })),
      400: 'error', 401: 'error', 403: 'error', 404: 'error', 503: 'error', 504: 'error',
    },
  },
];
