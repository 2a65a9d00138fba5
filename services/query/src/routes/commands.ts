import { AgateError, ErrorCode } from '../../../../core/src/errors.js';
import type { Store } from '../../../../core/src/store/store.js';
import { decodeTimeCursor, encodeCursor } from '../cursor.js';
import { enumParam, intParam, textParam, timeParam } from '../params.js';
import { commandCounts, commandDetail, searchCommands, type Interval } from '../queries.js';
import type { Route } from '../router.js';

const PROTOCOLS = ['postgres', 'ssh', 'kubernetes'] as const;
const INTERVALS: readonly Interval[] = ['minute', 'hour', 'day'];
// Buckets per answer: a day of minutes, or about three years of days.
const MAX_BUCKETS = 1500;
const SPAN_MICROS: Record<Interval, number> = { minute: 60e6, hour: 3600e6, day: 86_400e6 };

export function commandRoutes(store: Store): Route[] {
  return [
    {
      method: 'GET', path: '/v1/commands', permission: 'read',
      async handler({ query: q }) {
        const limit = intParam(q, 'limit', 100, 1, 1000);
        const cursor = decodeTimeCursor(q.get('cursor'));
        const commands = await searchCommands(store, {
          limit, text: textParam(q, 'q'), subject: textParam(q, 'subject'), target: textParam(q, 'target'),
          protocol: enumParam(q, 'protocol', PROTOCOLS), sessionId: textParam(q, 'session_id'),
          fromMicros: timeParam(q, 'from'), toMicros: timeParam(q, 'to'),
          after: cursor === undefined ? undefined : { time: cursor.time, command_id: cursor.id },
        });
        const last = commands.length === limit ? commands[commands.length - 1] : undefined;
        return {
          kind: 'rows', key: 'commands', rows: commands as unknown as Record<string, unknown>[],
          next_cursor: last === undefined ? null : encodeCursor([last.time, last.command_id]),
          columns: ['command_id', 'session_id', 'time', 'chain_id', 'seq', 'sequence', 'protocol', 'target', 'issuer', 'subject', 'text'],
        };
      },
    },
    {
      method: 'GET', path: '/v1/commands/:id', permission: 'read',
      async handler({ params }) {
        const command = await commandDetail(store, params.id!);
        if (command === undefined) throw new AgateError(ErrorCode.API_NOT_FOUND, `no command ${params.id}`);
        return { kind: 'json', body: { command } };
      },
    },
    {
      method: 'GET', path: '/v1/stats/commands', permission: 'read',
      async handler({ query: q }) {
        const interval = enumParam(q, 'interval', INTERVALS) ?? 'hour';
        const span = SPAN_MICROS[interval];
        const fromParam = timeParam(q, 'from');
        // With `from` alone, the answer runs to now or to the last bucket it may hold, whichever is earlier.
        const to = timeParam(q, 'to') ?? Math.min(Date.now() * 1000, fromParam === undefined ? Infinity : fromParam + span * MAX_BUCKETS);
        const from = fromParam ?? to - span * 24;
        if (from >= to) throw new AgateError(ErrorCode.API_BAD_REQUEST, 'from must be earlier than to');
        if ((to - from) / span > MAX_BUCKETS) throw new AgateError(ErrorCode.API_BAD_REQUEST, `from..to spans more than ${MAX_BUCKETS} ${interval}s; use a wider interval`);
        const buckets = await commandCounts(store, { interval, fromMicros: from, toMicros: to, subject: textParam(q, 'subject'), target: textParam(q, 'target') });
        return { kind: 'rows', key: 'buckets', rows: buckets as unknown as Record<string, unknown>[], next_cursor: null, columns: ['bucket', 'commands', 'allowed', 'denied', 'masked', 'pending', 'held'], extra: { interval, from: iso(from), to: iso(to) } };
      },
    },
  ];
}

const iso = (micros: number): string => new Date(Math.floor(micros / 1000)).toISOString();
