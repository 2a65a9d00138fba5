/** Something a service started that must be stopped at shutdown. */
export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * Where a service's factory registers each part as soon as it has started, so that a start that
 * fails half-way still stops what did start (in reverse order, with the rest of the process).
 */
export type OnStarted = (part: Stoppable) => void;
