/**
 * Ends the process with `code` once everything written to stdout and stderr has left it.
 * `process.exit` alone drops what a pipe has not taken yet: a reader slower than `agate`
 * (`| cat`, `| python3 -m json.tool`) got the first 64 KiB and a success status.
 */
export async function exitWhenFlushed(code: number): Promise<never> {
  process.exitCode = code;
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

/** Resolves when every earlier write to `stream` is done, or the reader has gone (EPIPE). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) return resolve();
    stream.once('error', () => resolve());
    // Writes complete in order: this empty one's callback runs after all before it.
    stream.write('', () => resolve());
  });
}
