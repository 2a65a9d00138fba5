import type { AgateEvent, EventType, Identity } from './events.js';

/** One fixed, representative event per type: the values frozen as golden bytes. */
const identity: Identity = {
  issuer: 'https://token.actions.githubusercontent.com',
  subject: 'repo:acme/app:ref:refs/heads/main',
  claims: { repository: 'acme/app', workflow: 'deploy', ref: 'refs/heads/main' },
};
const head = { time: 1_764_000_000_000_000, session_id: '0b9c7f2e-4c2a-4f4e-9d0a-2f8e1c3b5a71' };

export const SAMPLES: { readonly [T in EventType]: Extract<AgateEvent, { type: T }> } = {
  SessionOpened: {
    type: 'SessionOpened', event_id: '11111111-1111-4111-8111-111111111111', ...head,
    proxy_id: 'proxy-a', protocol: 'postgres', target: 'app', client_address: '127.0.0.1:50000', identity,
    attributes: { user: 'agent', application_name: 'psql' },
  },
  AuthenticationFailed: {
    type: 'AuthenticationFailed', event_id: '22222222-2222-4222-8222-222222222222', ...head,
    proxy_id: 'proxy-a', protocol: 'postgres', target: 'app', client_address: '127.0.0.1:50001',
    reason_code: 'AUTH_TOKEN_EXPIRED', message: 'token expired', claimed_issuer: identity.issuer, claimed_subject: null,
  },
  Command: {
    type: 'Command', event_id: '33333333-3333-4333-8333-333333333333', ...head,
    proxy_id: 'proxy-a', sequence: 1, protocol: 'postgres', target: 'app', identity,
    text: 'SELECT * FROM items', parameters: ['42', null], attributes: {},
    trace_parent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  },
  Verdict: {
    type: 'Verdict', event_id: '44444444-4444-4444-8444-444444444444', ...head,
    command_id: '33333333-3333-4333-8333-333333333333', decision: 'deny', rule_id: 'no-drop',
    reason: 'DROP is not allowed', source: 'policy', policy_revision: 'sha256:00', mask_set: null,
    approval_id: null, hold_expires_at: null, trace_parent: '00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01',
  },
  Response: {
    type: 'Response', event_id: '55555555-5555-4555-8555-555555555555', ...head,
    command_id: '33333333-3333-4333-8333-333333333333', status: 'ok', command_tag: 'SELECT 3', rows: 3,
    bytes: 120, duration_us: 1500, error_code: null, error_message: null,
    digest: 'sha256:9f2c0e6a3b1d4c5e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6', columns: ['id', 'name'],
    sample: [['1', 'alpha'], ['2', null], ['3', '[masked:email]']], masked_values: 1, fetches: [2, 1], outcome: 'observed',
    trace_parent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  },
  SessionClosed: {
    type: 'SessionClosed', event_id: '66666666-6666-4666-8666-666666666666', ...head,
    reason: 'client terminated', commands: 2, duration_us: 2_000_000,
  },
  Checkpoint: {
    type: 'Checkpoint', event_id: '77777777-7777-4777-8777-777777777777', time: head.time, session_id: '',
    chain_id: 'embedded', origin: 'agate.local/ledger/embedded', size: 6, root_hash: 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=',
    note: 'agate.local/ledger/embedded\n6\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n\u2014 agate.local/ledger AAAAAA==\n',
  },
  ApprovalRequested: {
    type: 'ApprovalRequested', event_id: '88888888-8888-4888-8888-888888888888', ...head,
    approval_id: 'ap-7f3a9c', command_id: '33333333-3333-4333-8333-333333333333', rule_id: 'drop-needs-approval', target: 'app',
    requester_issuer: identity.issuer, requester_subject: identity.subject, text: 'DROP TABLE items', required: 1,
    approvers: '{"team":["dba"]}', allow_self_approval: false, expires_at: head.time + 300_000_000,
  },
  ApprovalDecision: {
    type: 'ApprovalDecision', event_id: '99999999-9999-4999-8999-999999999999', ...head,
    approval_id: 'ap-7f3a9c', command_id: '33333333-3333-4333-8333-333333333333', decision: 'approve', approver_issuer: 'https://idp.example.com', approver_subject: 'alice',
    approver_claims: { agate_role: 'approver', team: 'dba' }, comment: 'reviewed', refused_reason: null,
  },
  ApprovalRefused: {
    type: 'ApprovalRefused', event_id: 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', ...head,
    approval_id: 'ap-7f3a9c', command_id: '33333333-3333-4333-8333-333333333333', decision: 'approve', approver_issuer: identity.issuer, approver_subject: identity.subject,
    approver_claims: {}, comment: null, refused_reason: 'self-approval is not allowed for rule drop-needs-approval',
  },
  ApiAuthenticationFailed: {
    type: 'ApiAuthenticationFailed', event_id: 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', ...head,
    proxy_id: 'agate-a', protocol: 'http', target: 'query-api', client_address: '127.0.0.1:50002',
    reason_code: 'AUTH_SIGNATURE_INVALID', message: 'signature verification failed', request: 'GET /v1/sessions', claimed_issuer: identity.issuer, claimed_subject: null,
  },
  SessionTerminationRequested: {
    type: 'SessionTerminationRequested', event_id: 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', ...head,
    requested_by_issuer: 'https://idp.example.com', requested_by_subject: 'alice', reason: 'runaway migration',
  },
  Notification: {
    type: 'Notification', event_id: 'cccccccc-cccc-4ccc-8ccc-cccccccccccc', ...head,
    sender_pid: 41_207, channel: 'jobs', payload: 'deploy key ***', payload_bytes: 30,
    digest: 'sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae', masked_values: 1,
  },
};
