// The shell replay page (/ui/replay#SESSION_ID): each interactive SSH shell of a session played in
// the asciicast player (asciinema-player, served by Agate from its npm package). A page of its own
// because the player's terminal is WebAssembly, which the browser runs only under this page's
// Content-Security-Policy ('wasm-unsafe-eval'); the console's other pages do not allow it.
import { create } from './asciinema-player/index.js';
import { get } from './api.js';
import { h, mount } from './dom.js';

/** Pauses longer than this play as this long (the record keeps the real times). */
const IDLE_LIMIT_S = 2;
const SPEEDS = ['1', '2', '5', '10'];
/**
 * The largest terminal the player is given. The window size is the agent's to choose (an SSH
 * pty-req or window-change of 1,000,000 × 1,000,000 is recorded as asked): the player would try
 * to allocate every cell, and never appear. Larger sizes are shown at this one, and say so.
 */
const MAX_COLS = 500;
const MAX_ROWS = 200;
const clampSize = (cols, rows) => [Math.max(1, Math.min(MAX_COLS, Math.floor(Number(cols)) || 80)), Math.max(1, Math.min(MAX_ROWS, Math.floor(Number(rows)) || 24))];

const view = document.getElementById('view');

async function main() {
  const id = decodeURIComponent(location.hash.replace(/^#/, ''));
  if (id === '') return mount(view, h('p', { class: 'error' }, 'No session named (/ui/replay#SESSION_ID).'));
  const back = h('p', {}, h('a', { href: `/ui/#/sessions/${encodeURIComponent(id)}` }, '← Session'));
  try {
    const { recordings } = await get(`/v1/sessions/${encodeURIComponent(id)}/recordings`);
    if (recordings.length === 0) return mount(view, back, h('p', { class: 'muted' }, 'No interactive shell was recorded in this session.'));
    mount(view, back, h('h1', {}, `Shells of session ${id}`), ...recordings.map(shellPlayer));
  } catch (err) {
    mount(view, back, h('p', { class: 'error' }, err.status === 401 ? 'Not signed in to the console.' : err.message));
  }
}

/**
 * One recording (masked as the ledger holds it) in the player, with a speed choice: the player
 * takes its speed when created, so a change recreates it at the same time and play state.
 * @param {{ command_id: string, header: { width: number, height: number }, events: [number, string, string][], truncated: boolean }} rec
 */
function shellPlayer(rec) {
  const [cols, rows] = clampSize(rec.header.width, rec.header.height);
  // A resize event ("COLSxROWS") is clamped the same way.
  const events = rec.events.map((e) => (e[1] === 'r' ? [e[0], 'r', clampSize(...String(e[2]).split('x')).join('x')] : e));
  const cast = [JSON.stringify({ ...rec.header, width: cols, height: rows }), ...events.map((e) => JSON.stringify(e))].join('\n');
  const screen = h('div', { class: 'cast', 'data-command-id': rec.command_id });
  const speed = h('select', { class: 'speed', 'aria-label': 'speed' }, ...SPEEDS.map((s) => h('option', { value: s }, `${s}×`)));
  const open = (startAt, autoPlay) => create({ data: cast }, screen, {
    cols, rows, idleTimeLimit: IDLE_LIMIT_S, speed: Number(speed.value), startAt, autoPlay, preload: true, fit: 'width',
  });
  let player = open(0, false);
  let playing = false;
  const follow = (p) => {
    p.addEventListener('play', () => (playing = true));
    p.addEventListener('pause', () => (playing = false));
    p.addEventListener('ended', () => (playing = false));
  };
  follow(player);
  speed.addEventListener('change', async () => {
    const at = await player.getCurrentTime();
    player.dispose();
    player = open(at, playing);
    follow(player);
  });
  return h('figure', { class: 'player' },
    h('figcaption', {}, `Shell ${rec.command_id} · ${cols === rec.header.width && rows === rec.header.height ? `${cols}×${rows}` : `recorded at ${rec.header.width}×${rec.header.height}, shown at ${cols}×${rows}`} · ${rec.events.length} events${rec.truncated ? ' (truncated)' : ''}`),
    screen, h('div', { class: 'player-controls' }, h('label', {}, 'Speed ', speed), h('span', { class: 'muted' }, `pauses over ${IDLE_LIMIT_S} s play as ${IDLE_LIMIT_S} s; keys: space plays/pauses, 0–9 seek, ←/→ step`)));
}

void main();
