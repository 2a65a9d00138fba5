// Preloaded (`node --import`) into an `agate start` by test/e2e/clean-stop.test.ts: the process
// sends itself SIGTERM the moment it writes its "agate started" line, before anything else it
// runs. The earliest stop an operator (or a test harness reading that line) can send, without
// depending on how the machine schedules the two processes.
const write = process.stderr.write.bind(process.stderr) as (chunk: string | Uint8Array, ...rest: unknown[]) => boolean;
let sent = false;
process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const ok = write(chunk, ...rest);
  if (!sent && String(chunk).includes('"msg":"agate started"')) {
    sent = true;
    process.kill(process.pid, 'SIGTERM');
  }
  return ok;
}) as typeof process.stderr.write;
