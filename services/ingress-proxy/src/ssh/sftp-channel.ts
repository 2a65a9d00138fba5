import { dirname as posixDirname } from 'node:path/posix';
import type { ServerChannel } from 'ssh2';
import { ErrorCode, describeError } from '../../../../core/src/errors.js';
import { nowMicros, type Command } from '../../../../schemas/src/events.js';
import { upstreamOr, type ChannelContext } from './channel-context.js';
import { execResponse, fileResponse } from './responses.js';
import { relaySftp, type FileRequest, type FileResult } from './sftp/relay.js';
import { TargetPaths } from './sftp/target-paths.js';

/**
 * sftp (and scp, which speaks sftp): the channel is decided as `(subsystem sftp)` (request
 * sftp), then each file operation is its own decided Command (`sftp write /path`) whose
 * Response carries the bytes moved and the file's digest. Each path is decided as named and
 * as where it leads on the target (`resolved_path`: `..`, relative paths and symlinks followed,
 * sftp/target-paths.ts). The channel's Response records the bytes each way and a digest of what
 * the target sent back.
 */
export async function sftpChannel(ctx: ChannelContext, accept: () => ServerChannel | undefined): Promise<void> {
  const { gate, events } = ctx;
  const channel = accept();
  if (channel === undefined) return;
  channel.pause();
  const command = gate.command('(subsystem sftp)', { request: 'sftp', subsystem: 'sftp', ...ctx.refused?.() });
  const decision = await gate.decide(command);
  if (decision.kind === 'refuse') return gate.refuseOn(channel, command, 'refused', decision.message);
  const upstream = await upstreamOr(ctx, channel, decision.pass);
  if (upstream === undefined) return;
  const started = nowMicros();
  let paths: TargetPaths;
  try {
    paths = await TargetPaths.open(upstream);
  } catch (err) {
    return gate.refuseOn(channel, command, 'error', `the target refused the sftp subsystem: ${(err as Error).message}`, ErrorCode.UPSTREAM_UNREACHABLE, 255);
  }
  channel.once('close', () => paths.close());
  const failed = (why: string) => void gate.refuseOn(channel, command, 'error', `the target refused the sftp subsystem: ${why}`, ErrorCode.UPSTREAM_UNREACHABLE, 255);
  // ssh2 throws rather than call back once the target connection closed: refused, not a crash.
  try {
    upstream.subsys('sftp', (err, stream) => {
      if (err) return failed(err.message);
      const hooks = {
        decide: (request: FileRequest) => fileOperation(ctx, request, paths),
        finished: (op: { command: Command; started: number }, result: FileResult) => void events.emitLogged(fileResponse(op.command, op.started, result)),
      };
      void relaySftp(channel, stream, hooks).then((outcome) => {
        const response = execResponse(command, outcome, started);
        // The channel usually closes without an exit status; how much moved is what matters.
        response.command_tag = `sftp ${outcome.bytesUp} bytes up, ${outcome.bytes} bytes down`;
        if (outcome.error === undefined && outcome.exitCode === null && outcome.signal === null && !outcome.clientGone) {
          response.status = 'ok';
          response.error_message = null;
        }
        return events.emitLogged(response);
      });
    });
  } catch (err) {
    failed(describeError(err));
  }
}

/**
 * One sftp file operation: recorded and decided; a refusal carries the reason to the client
 * (the relay records it with the operation's Response).
 */
async function fileOperation(ctx: ChannelContext, request: FileRequest, paths: TargetPaths): Promise<{ token: { command: Command; started: number }; refusal?: string }> {
  const mask = (p: string) => ctx.audit.maskText(p).text;
  const attributes: Record<string, string> = { request: 'sftp', operation: request.operation, path: mask(request.path), sftp_request: request.request };
  attributes.resolved_path = mask(await paths.resolve(request.path));
  if (request.targetPath !== undefined) {
    attributes.target_path = mask(request.targetPath);
    // A symlink's target is read from the link's own directory; a rename's or hard link's from the home.
    const from = request.request === 'symlink' ? posixDirname(paths.lexical(request.path)) : undefined;
    attributes.resolved_target_path = mask(await paths.resolve(request.targetPath, from));
  }
  const text = `sftp ${request.operation} ${request.path}${request.targetPath === undefined ? '' : ` ${request.targetPath}`}`;
  const command = ctx.gate.command(text, attributes);
  const decision = await ctx.gate.decide(command);
  const token = { command, started: nowMicros() };
  return decision.kind === 'refuse' ? { token, refusal: decision.message } : { token };
}
