import type { Column } from './backend-decode.js';
import type { Bind, Close, Parse } from './messages.js';
import type { StatementResult } from './result-recorder.js';
import { MAX_RETAINED_BYTES, paramBytes, SizedMap } from './sized-map.js';
import { valueText } from './value-text.js';

/** A statement the client prepared with Parse, as the server will run it. */
export interface PreparedStatement {
  text: string;
  /** Parameter type OIDs: from Parse (0 = unspecified), refined by ParameterDescription. */
  paramTypes: number[];
}

/** A portal the client bound: the statement (captured at Bind) and its parameter values. */
export interface Portal {
  statement: PreparedStatement | undefined;
  params: (Buffer | null)[];
  paramFormats: number[];
  /** Result columns, once a Describe of this portal was answered. */
  columns?: Column[];
  /** A Describe of this portal was sent upstream (by the client or by Agate). */
  described: boolean;
  /**
   * The decided statement while the portal is suspended (an Execute with a row limit left rows):
   * later Executes of the portal continue it rather than being decided again.
   */
  run?: StatementResult;
  /**
   * The server no longer has this portal (closed, bound again, dropped by SQL or the end of its
   * transaction): a PortalSuspended still on its way for it ends its statement there.
   */
  gone?: boolean;
}

/** Reverts one change when the server failed (`skipped` false) or skipped (`skipped` true) the message. */
export type Undo = (skipped: boolean) => void;

type ParseOutcome = { ok: true; undo: Undo; statement: PreparedStatement } | { ok: false; sqlstate: string; message: string };

/** Bounds on what one session may keep; the server has none, the proxy must. */
export const MAX_STATEMENTS = 10_000;
const MAX_PORTALS = 1_000;

const tooMuch = `Agate keeps at most ${MAX_RETAINED_BYTES >> 20} MiB of prepared statement text and bound values per session; close some statements or portals first`;

/**
 * The extended query protocol's named objects, mirrored so every Execute can be recorded with
 * the statement text and parameter values the server will actually use.
 *
 * Each change is applied when the client's message passes through and undone if the server
 * rejects or skips that message (the `undo` callbacks are run by the reply router). A Parse that
 * would redefine a statement name already in use is refused up front, as the server would refuse
 * it, so a failed or skipped Parse can never leave Agate believing a name means other text than
 * it does on the server.
 */
export class ExtendedState {
  readonly statements = new SizedMap<PreparedStatement>((s) => s.text.length);
  readonly portals = new SizedMap<Portal>((p) => paramBytes(p.params));

  /** `onDrop` hears of every portal the server drops while suspended, to record how it ended. */
  readonly #onDrop: (portal: Portal) => void;

  constructor(onDrop: (portal: Portal) => void = () => undefined) {
    this.#onDrop = onDrop;
  }

  parse(msg: Parse): ParseOutcome {
    if (msg.name !== '' && this.statements.has(msg.name)) {
      return { ok: false, sqlstate: '42P05', message: `prepared statement "${msg.name}" already exists` };
    }
    if (this.statements.size >= MAX_STATEMENTS && !this.statements.has(msg.name)) {
      return { ok: false, sqlstate: '54000', message: `Agate keeps at most ${MAX_STATEMENTS} prepared statements per session` };
    }
    const previous = this.statements.get(msg.name);
    if (this.#retained() - (previous?.text.length ?? 0) + msg.query.length > MAX_RETAINED_BYTES) {
      return { ok: false, sqlstate: '54000', message: tooMuch };
    }
    const entry: PreparedStatement = { text: msg.query, paramTypes: msg.paramTypes.slice() };
    this.statements.set(msg.name, entry);
    return {
      ok: true,
      statement: entry,
      // The server drops the old unnamed statement before parsing the new one, so a failed
      // Parse leaves no unnamed statement; a skipped one leaves the old in place.
      undo: (skipped) => {
        if (this.statements.get(msg.name) !== entry) return;
        if (skipped && previous !== undefined) this.statements.set(msg.name, previous);
        else this.statements.delete(msg.name);
      },
    };
  }

  bind(msg: Bind): { ok: true; undo: Undo; portal: Portal } | { ok: false; sqlstate: string; message: string } {
    if (this.portals.size >= MAX_PORTALS && !this.portals.has(msg.portal)) {
      return { ok: false, sqlstate: '54000', message: `Agate keeps at most ${MAX_PORTALS} open portals per session` };
    }
    const previous = this.portals.get(msg.portal);
    if (this.#retained() - paramBytes(previous?.params ?? []) + paramBytes(msg.params) > MAX_RETAINED_BYTES) {
      return { ok: false, sqlstate: '54000', message: tooMuch };
    }
    const portal: Portal = { statement: this.statements.get(msg.statement), params: msg.params, paramFormats: msg.paramFormats, described: false };
    // Binding a name in use drops the portal it named (the unnamed one always; a named one the server refuses).
    if (previous?.run !== undefined) this.#drop(previous);
    if (previous !== undefined) previous.gone = true;
    this.portals.set(msg.portal, portal);
    const undo: Undo = () => {
      if (this.portals.get(msg.portal) !== portal) return;
      portal.gone = true;
      if (previous !== undefined) {
        previous.gone = false;
        this.portals.set(msg.portal, previous);
      } else this.portals.delete(msg.portal);
    };
    return { ok: true, undo, portal };
  }

  close(msg: Close): Undo {
    const map: Map<string, unknown> = msg.kind === 'S' ? this.statements : this.portals;
    const previous = map.get(msg.name);
    if (msg.kind === 'P' && (previous as Portal | undefined)?.run !== undefined) this.#drop(previous as Portal);
    if (msg.kind === 'P' && previous !== undefined) (previous as Portal).gone = true;
    map.delete(msg.name);
    return () => {
      if (previous === undefined || map.has(msg.name)) return;
      if (msg.kind === 'P') (previous as Portal).gone = false;
      map.set(msg.name, previous);
    };
  }

  /**
   * SQL dropped portals (`CLOSE name`, `CLOSE ALL`, `DECLARE name`, `DISCARD ALL`; no name: all):
   * the name no longer means what Bind made. Forgotten as the statement is forwarded, before the
   * server confirms: should it fail, Agate knows less than the server and refuses an Execute of
   * the name, rather than decide it as a statement the name may no longer run.
   */
  dropPortals(name?: string): void {
    for (const [key, portal] of this.portals) {
      if (name !== undefined && key !== name) continue;
      if (portal.run !== undefined) this.#drop(portal);
      portal.gone = true;
      this.portals.delete(key);
    }
  }

  /** SQL dropped prepared statements (`DEALLOCATE name`, `DEALLOCATE ALL`, `DISCARD ALL`; no name: all); as {@link dropPortals}. */
  dropStatements(name?: string): void {
    if (name === undefined) this.statements.clear();
    else this.statements.delete(name);
  }

  /** At the end of a transaction the server drops every portal (cursors WITH HOLD are not tracked). */
  endTransaction(): void {
    for (const portal of this.portals.values()) {
      if (portal.run !== undefined) this.#drop(portal);
      portal.gone = true;
    }
    this.portals.clear();
  }

  /** Statement texts and bound values held: the server keeps them all, one proxy serves every session. */
  #retained(): number {
    return this.statements.total + this.portals.total;
  }

  #drop(portal: Portal): void {
    this.#onDrop(portal);
    portal.run = undefined;
  }
}

/** The bound values as text for the audit trail, decoded by format code and parameter type. */
export function parameterTexts(portal: Portal): (string | null)[] {
  const formats = portal.paramFormats;
  const types = portal.statement?.paramTypes ?? [];
  return portal.params.map((value, i) => {
    if (value === null) return null;
    // No format codes: all text; one: it applies to all; otherwise one per parameter.
    const format = formats.length === 0 ? 0 : formats.length === 1 ? formats[0]! : (formats[i] ?? 0);
    return valueText(value, format, types[i] ?? 0);
  });
}
