/**
 * What `/readyz` and `/healthz` answer, on the ops listener and the query API alike: each
 * component of this process reports whether it can do its job now. Components either push their
 * state when it changes (`set`) or register a probe that is asked on every check (`probe`, for
 * dependencies that fail silently while idle, such as a store nobody queried for a while). The
 * process is ready when every component is. A probe registered `live` also decides liveness: its
 * component has stopped and only a restart helps (a consumer that cannot read its log), unlike a
 * refusal that waits for an operator (a ledger whose store is behind its checkpoints).
 *
 * One instance per process (run-service.ts makes it and hands it to every service; a test
 * makes its own), never a module-level one: two Agates in one test process stay apart.
 *
 * @example
 * const readiness = new Readiness();
 * readiness.set('ledger.append', { ready: false, reason: 'the store is behind the checkpoint' });
 * readiness.set('ledger.append', READY);
 */
type ComponentState = { ready: true } | { ready: false; reason: string };
type Probe = () => Promise<ComponentState>;

export const READY: ComponentState = Object.freeze({ ready: true });

interface ReadinessReport {
  ready: boolean;
  components: Record<string, ComponentState>;
}

/** How long one probe may take before it counts as "not ready" (a hung store is not ready). */
const PROBE_TIMEOUT_MS = 2_000;

export class Readiness {
  readonly #states = new Map<string, ComponentState>();
  readonly #probes = new Map<string, Probe>();
  readonly #live = new Set<string>();

  set(component: string, state: ComponentState): void {
    this.#states.set(component, state.ready ? READY : { ready: false, reason: state.reason });
  }

  probe(component: string, probe: Probe, options: { live?: boolean } = {}): void {
    this.#probes.set(component, probe);
    if (options.live === true) this.#live.add(component);
    else this.#live.delete(component);
  }

  /** A component that stopped reports nothing, so it neither holds readiness up nor down. */
  remove(component: string): void {
    this.#states.delete(component);
    this.#probes.delete(component);
    this.#live.delete(component);
  }

  /** Runs every probe (concurrently, each bounded) and combines them with the pushed states. */
  async report(timeoutMs = PROBE_TIMEOUT_MS): Promise<ReadinessReport> {
    const components: Record<string, ComponentState> = Object.fromEntries(this.#states);
    const probed = await Promise.all([...this.#probes].map(async ([name, probe]) => [name, await runProbe(probe, timeoutMs)] as const));
    for (const [name, state] of probed) components[name] = state;
    const names = Object.keys(components).sort();
    const sorted = Object.fromEntries(names.map((n) => [n, components[n]!]));
    // Nothing registered means nothing started yet: not ready.
    return { ready: names.length > 0 && names.every((n) => components[n]!.ready), components: sorted };
  }

  /** Liveness: only the `live` probes; with none, the process is alive. */
  async liveness(timeoutMs = PROBE_TIMEOUT_MS): Promise<ReadinessReport> {
    const probed = await Promise.all([...this.#live].sort().map(async (name) => [name, await runProbe(this.#probes.get(name)!, timeoutMs)] as const));
    return { ready: probed.every(([, s]) => s.ready), components: Object.fromEntries(probed) };
  }
}

/** A probe over a component's own account of itself: `problem()` says why it cannot work, or undefined. */
export function problemProbe(problem: () => string | undefined): Probe {
  return async () => {
    const why = problem();
    return why === undefined ? READY : { ready: false, reason: why };
  };
}

/** The components of a report that are not ready, with why. */
export function problemsOf(report: ReadinessReport): Array<{ component: string; problem: string }> {
  return Object.entries(report.components).flatMap(([component, s]) => (s.ready ? [] : [{ component, problem: s.reason }]));
}

async function runProbe(probe: Probe, timeoutMs: number): Promise<ComponentState> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ComponentState>((resolve) => (timer = setTimeout(() => resolve({ ready: false, reason: `no answer within ${timeoutMs} ms` }), timeoutMs)));
  try {
    return await Promise.race([probe().catch((err: unknown) => notReady(err)), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A not-ready state from an error, its message cut short (it is served over HTTP). */
export function notReady(err: unknown, prefix = ''): ComponentState {
  const message = err instanceof Error ? err.message : String(err);
  return { ready: false, reason: `${prefix}${message}`.slice(0, 300) };
}
