import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import type { Store } from '../../../../core/src/store/store.js';
import { decodeCursor, decodeTimeCursor, encodeCursor, isStoreTime } from '../cursor.js';
import { claimParams, enumParam, intParam, textParam, timeParam } from '../params.js';
import { getSession, listSessions, sessionEvents, sessionTimeline, type Decision } from '../queries.js';
import { sessionRecordings } from '../recording.js';
import type { Route } from '../router.js';

const DECISIONS: readonly Decision[] = ['allow', 'deny', 'hold', 'mask'];
const PROTOCOLS = ['postgres', 'ssh', 'kubernetes'] as const;

export function sessionRoutes(store: Store): Route[] {
  return [
    {
      method: 'GET', path: '/v1/sessions', permission: 'read',
      async handler({ query: q }) {
        const limit = intParam(q, 'limit', 100, 1, 1000);
        const cursor = decodeTimeCursor(q.get('cursor'));
        // `before` is the legacy cursor: a store time (`next_before`) or an RFC 3339 timestamp.
        const rawBefore = q.get('before');
        if (rawBefore !== null && isStoreTime(rawBefore)) q.set('before', rawBefore.replace(' ', 'T') + 'Z');
        const before = timeParam(q, 'before');
        const sessions = await listSessions(store, {
          limit, beforeMicros: before,
          subject: textParam(q, 'subject'), issuer: textParam(q, 'issuer'), target: textParam(q, 'target'),
          protocol: enumParam(q, 'protocol', PROTOCOLS), verdict: enumParam(q, 'verdict', DECISIONS), claims: claimParams(q), text: textParam(q, 'q'),
          fromMicros: timeParam(q, 'from'), toMicros: timeParam(q, 'to'),
          after: cursor === undefined ? undefined : { opened_at: cursor.time, session_id: cursor.id },
        });
        const last = sessions.length === limit ? sessions[sessions.length - 1] : undefined;
        return {
          kind: 'rows', key: 'sessions', rows: sessions as unknown as Record<string, unknown>[],
          next_cursor: last === undefined ? null : encodeCursor([last.opened_at, last.session_id]),
          extra: { next_before: last?.opened_at ?? null },
          columns: ['session_id', 'opened_at', 'protocol', 'target', 'issuer', 'subject', 'client_address', 'proxy_id', 'closed_at', 'commands', 'denied'],
        };
      },
    },
    {
      method: 'GET', path: '/v1/sessions/:id', permission: 'read',
      async handler({ params }) {
        const session = await getSession(store, params.id!);
        if (session === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, `no session ${params.id}`);
        return { kind: 'json', body: { session, commands: await sessionTimeline(store, params.id!) } };
      },
    },
    {
      method: 'GET', path: '/v1/sessions/:id/commands', permission: 'read',
      async handler({ params }) {
        const commands = await sessionTimeline(store, params.id!);
        return { kind: 'rows', key: 'commands', rows: commands as unknown as Record<string, unknown>[], next_cursor: null };
      },
    },
    {
      // Interactive shells of an SSH session as asciicast v2 recordings (masked as recorded).
      method: 'GET', path: '/v1/sessions/:id/recordings', permission: 'read',
      async handler({ params }) {
        if ((await getSession(store, params.id!)) === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, `no session ${params.id}`);
        return { kind: 'json', body: { recordings: await sessionRecordings(store, params.id!) } };
      },
    },
    {
      method: 'GET', path: '/v1/sessions/:id/timeline', permission: 'read',
      async handler({ params, query: q }) {
        const limit = intParam(q, 'limit', 1000, 1, 10_000);
        const after = decodeCursor(q.get('cursor'), ['number'])?.[0] as number | undefined;
        const events = await sessionEvents(store, params.id!, after ?? 0, limit);
        if (events.length === 0 && after === undefined && (await getSession(store, params.id!)) === undefined) {
          throw new AgateError(ErrorCode.API_NOT_FOUND, `no session ${params.id}`);
        }
        const last = events.length === limit ? events[events.length - 1] : undefined;
        return {
          kind: 'rows', key: 'events', rows: events as unknown as Record<string, unknown>[],
          next_cursor: last === undefined ? null : encodeCursor([last.seq]),
          columns: ['kind', 'chain_id', 'seq', 'time', 'event_id', 'command_id', 'text', 'decision', 'rule_id', 'reason', 'status', 'command_tag', 'rows', 'duration_us', 'error_code', 'approver', 'channel'],
        };
      },
    },
  ];
}
