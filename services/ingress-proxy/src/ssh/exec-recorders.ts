import type { Response } from '../../../../schemas/src/events.js';
import type { ExecTaps } from './exec-relay.js';
import { PktLineSection, refUpdates, wantedRefs } from './git-refs.js';
import { gitInvocation } from './git/invocation.js';
import { ScpSourceReader, scpMode } from './scp-stream.js';

/** Taps on an exec's streams, and the Response fields with what they read. */
interface StreamRecorder {
  taps: ExecTaps;
  recorded: () => Pick<Response, 'columns' | 'sample' | 'rows'>;
}

/** What Agate reads from an exec's streams besides bytes and digest: git refs, scp files. */
export function streamRecorder(command: string): StreamRecorder | undefined {
  return gitTaps(command) ?? scpTaps(command);
}

/**
 * For `git-receive-pack` and `git-upload-pack`: taps that read the ref section of each stream,
 * and the Response fields that record it (a push: `old new ref` per updated ref; a fetch or
 * clone: each wanted oid with the refs the server advertised for it).
 */
function gitTaps(command: string): StreamRecorder | undefined {
  const git = gitInvocation(command);
  if (git?.kind !== 'git') return undefined;
  const service = git.service;
  const advertisement = new PktLineSection();
  const request = new PktLineSection();
  // The client's section starts after the server's advertisement; both are read in order.
  const taps: ExecTaps = { up: (c) => request.push(c), down: (c) => advertisement.push(c) };
  const recorded = () => {
    if (service === 'receive-pack') {
      const updates = refUpdates(request.lines);
      return { columns: ['old', 'new', 'ref'], sample: updates.map((u) => [u.old, u.new, u.ref]), rows: updates.length };
    }
    const wants = wantedRefs(advertisement.lines, request.lines);
    return { columns: ['want', 'refs'], sample: wants.map((w) => [w.oid, w.refs.join(' ')]), rows: wants.length };
  };
  return { taps, recorded };
}

/**
 * Legacy scp (`scp -O`, run as `scp -t` / `scp -f` on the target): reads the side that carries
 * the files (stdin for an upload, stdout for a download) and records each file's path, size and
 * digest as the Response's rows.
 */
function scpTaps(command: string): StreamRecorder | undefined {
  const mode = scpMode(command);
  if (mode === undefined) return undefined;
  const reader = new ScpSourceReader();
  const taps: ExecTaps = mode === 'sink' ? { up: (c) => reader.push(c) } : { down: (c) => reader.push(c) };
  const recorded = () => {
    reader.end();
    return { columns: ['path', 'size', 'digest'], sample: reader.files.map((f) => [f.path, String(f.size), f.digest]), rows: reader.files.length };
  };
  return { taps, recorded };
}
