/**
 * A component's own account of whether it works, for /healthz and /readyz. `problem()` says
 * why not (secret-free: it is served without a token), or undefined. A problem always makes the
 * process not ready; with `live` set it also fails liveness: the component has stopped and a
 * restart is the remedy (a consumer that cannot read its log), unlike a refusal that waits for
 * an operator (a ledger whose store is behind its checkpoints).
 */
export interface HealthCheck {
  component: string;
  problem(): string | undefined;
  live?: boolean;
}

export interface HealthReport {
  ok: boolean;
  problems: { component: string; problem: string }[];
}

/** The report over `checks`; `liveOnly` counts only the checks that fail liveness. */
export function healthReport(checks: readonly HealthCheck[], liveOnly: boolean): HealthReport {
  const problems: HealthReport['problems'] = [];
  for (const c of checks) {
    if (liveOnly && c.live !== true) continue;
    const problem = c.problem();
    if (problem !== undefined) problems.push({ component: c.component, problem });
  }
  return { ok: problems.length === 0, problems };
}
