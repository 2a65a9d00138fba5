import type { Store } from '../../../core/src/store/store.js';

/** asciicast v2 header fields Agate fills in. */
interface CastHeader {
  version: 2;
  width: number;
  height: number;
  /** Unix seconds when the shell started. */
  timestamp: number;
  env: { TERM?: string };
  title: string;
}

/** One interactive shell of a session, as an asciicast v2 recording (already masked). */
export interface Recording {
  command_id: string;
  header: CastHeader;
  events: [number, string, string][];
  /** Set when the recording has more parts than one answer carries. */
  truncated: boolean;
}

/** Parts of one recording returned at most (each part holds up to 32 KiB of terminal data). */
const MAX_RECORDING_PARTS = 4096;

interface ShellRow {
  command_id: string;
  time: string;
  body: string;
}

interface PartRow {
  command_id: string;
  body: string;
}

/**
 * The interactive shells of a session as asciicast v2 recordings. The SSH proxy records each
 * shell as a Command (`attributes.request` = shell) followed by Responses tagged
 * `asciicast v2 part N` whose sample rows are the events `[time, code, data]`.
 */
export async function sessionRecordings(store: Store, sessionId: string): Promise<Recording[]> {
  const shells = await store.query<ShellRow>(
    `SELECT event_id AS command_id, toString(time) AS time, body FROM agate.ledger
     WHERE session_id = {id:String} AND event_type = 'Command' AND JSONExtractString(body, 'attributes', 'request') = 'shell'
     ORDER BY chain_id, seq`,
    { id: sessionId },
  );
  if (shells.length === 0) return [];
  const parts = await store.query<PartRow>(
    `SELECT JSONExtractString(body, 'command_id') AS command_id, body FROM agate.ledger
     WHERE session_id = {id:String} AND event_type = 'Response' AND startsWith(JSONExtractString(body, 'command_tag'), 'asciicast v2 part ')
     ORDER BY chain_id, seq LIMIT {limit:UInt32}`,
    { id: sessionId, limit: MAX_RECORDING_PARTS * shells.length + 1 },
  );
  return shells.map((shell) => {
    const command = JSON.parse(shell.body) as { time: number; text: string; attributes: Record<string, string> };
    const mine = parts.filter((p) => p.command_id === shell.command_id);
    const events = mine.slice(0, MAX_RECORDING_PARTS).flatMap((p) => {
      const sample = (JSON.parse(p.body) as { sample: (string | null)[][] }).sample;
      return sample.map(([t, code, data]) => [Number(t), code ?? 'o', data ?? ''] as [number, string, string]);
    });
    // Input is recorded by the line, so it can start before output recorded earlier.
    events.sort((a, b) => a[0] - b[0]);
    const a = command.attributes;
    return {
      command_id: shell.command_id,
      header: {
        version: 2, width: Number(a.cols ?? 80) || 80, height: Number(a.rows ?? 24) || 24, timestamp: Math.floor(command.time / 1e6),
        env: a.term === undefined ? {} : { TERM: a.term }, title: `Agate session ${sessionId}`,
      },
      events,
      truncated: mine.length > MAX_RECORDING_PARTS,
    };
  });
}

/** A recording as an asciicast v2 file: the header line, then one JSON event per line. */
export function toAsciicast(recording: Recording): string {
  return [JSON.stringify(recording.header), ...recording.events.map((e) => JSON.stringify(e))].join('\n') + '\n';
}
