import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { platform, setPriority } from 'node:os';

/**
 * The embedded engine's threads give way to the rest of the process (Linux; elsewhere nothing).
 *
 * The engine runs in Agate's process on the same cores as the proxies' event loop. On a busy
 * machine an insert woke engine threads that took the core a statement was waiting for, and a
 * woken thread that does not preempt waits for the scheduler's next tick (4 ms at HZ=250): that
 * was the 1-client p99. A thread under SCHED_IDLE is preempted at once by any woken ordinary
 * thread, and still gets every core nobody else wants (issue 21, on a loaded machine: 1-client p50
 * and p99 lower in 7 of 8 alternated pairs, statements per second higher in 8; the ledger kept up
 * at 8 clients).
 *
 * Only threads the engine named are touched: every thread Node starts (the main thread, V8's
 * helpers, libuv's pool that runs the log's fdatasync, workers) keeps the name `node`. Where
 * `chrt` is missing, the engine threads get nice 19 instead (Node can set that itself).
 */
export class EngineThreads {
  /** Threads already seen (given way, or Node's own). */
  readonly #seen = new Set<string>();
  #nextScan = 0;
  #viaNice = false;
  readonly #enabled = platform() === 'linux';
  #pending: Promise<void> = Promise.resolve();

  /**
   * Has every engine thread not seen yet give way; looks at most once per SCAN_MS (the engine
   * starts most of its threads when it opens and a few more as its pool grows); `force` looks
   * now. The promise settles once the threads of this look are done (callers need not wait).
   */
  giveWay(force = false): Promise<void> {
    const now = Date.now();
    if (!this.#enabled || (!force && now < this.#nextScan)) return this.#pending;
    this.#nextScan = now + SCAN_MS;
    const tids = this.#newEngineThreads();
    if (tids.length > 0) this.#pending = this.#pending.then(() => this.#apply(tids));
    return this.#pending;
  }

  #newEngineThreads(): string[] {
    const out: string[] = [];
    let tids: string[];
    try {
      tids = readdirSync('/proc/self/task');
    } catch {
      return out;
    }
    for (const tid of tids) {
      if (this.#seen.has(tid)) continue;
      let name: string;
      try {
        name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      } catch {
        continue; // the thread ended meanwhile
      }
      // Node's (or one the engine has not named yet: looked at again next time).
      if (name === NODE_THREAD) continue;
      this.#seen.add(tid);
      out.push(tid);
    }
    return out;
  }

  /**
   * Every thread that exists now is Node's, whatever its name becomes: call it just before the
   * engine opens.
   */
  markNodeThreads(): void {
    if (!this.#enabled) return;
    try {
      for (const tid of readdirSync('/proc/self/task')) this.#seen.add(tid);
    } catch {
      // no /proc: giveWay finds nothing either
    }
  }

  async #apply(tids: readonly string[]): Promise<void> {
    if (!this.#viaNice) {
      const missing = await new Promise<boolean>((resolve) => {
        // One shell for the lot; a thread that ended meanwhile is no error.
        execFile('sh', ['-c', 'command -v chrt >/dev/null || exit 127; for t do chrt --idle --pid 0 "$t" 2>/dev/null; done; exit 0', 'sh', ...tids], (err) => resolve(err !== null));
      });
      if (!missing) return;
      this.#viaNice = true;
    }
    for (const tid of tids) {
      try {
        setPriority(Number(tid), 19);
      } catch {
        // the thread ended meanwhile
      }
    }
  }
}

/** The name every thread Node starts carries (the engine names its own). */
const NODE_THREAD = 'node';
const SCAN_MS = 5_000;
