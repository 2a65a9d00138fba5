// Charts drawn as SVG by the console itself: no chart library, no CDN, nothing inline that the
// Content-Security-Policy would have to allow (presentation attributes only, no style attributes).
const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(typeof c === 'object' ? c : document.createTextNode(String(c)));
  return el;
}

export const DECISION_COLOURS = { allow: '#1f7a3d', mask: '#2458d6', hold: '#a15c00', deny: '#b3261e' };

/**
 * Stacked columns: one per bucket, one segment per series.
 * @param {{ bucket: string, values: Record<string, number> }[]} buckets
 * @param {string[]} series  stacking order, bottom first
 */
export function stackedColumns(buckets, series, colours, { width = 560, height = 220, label = '' } = {}) {
  const pad = { l: 40, r: 8, t: 8, b: 36 };
  const max = Math.max(1, ...buckets.map((b) => series.reduce((n, k) => n + (b.values[k] ?? 0), 0)));
  const w = (width - pad.l - pad.r) / Math.max(1, buckets.length);
  const y = (v) => pad.t + (height - pad.t - pad.b) * (1 - v / max);
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label, class: 'chart' });
  for (const t of [0, max / 2, max]) {
    svg.append(s('line', { x1: pad.l, x2: width - pad.r, y1: y(t), y2: y(t), stroke: '#dde2e8' }),
      s('text', { x: pad.l - 4, y: y(t) + 4, 'text-anchor': 'end', 'font-size': 10, fill: '#6a7483' }, Math.round(t)));
  }
  buckets.forEach((b, i) => {
    let base = 0;
    const g = s('g', { 'data-bucket': b.bucket });
    for (const k of series) {
      const v = b.values[k] ?? 0;
      if (v === 0) continue;
      g.append(s('rect', { x: pad.l + i * w + 1, y: y(base + v), width: Math.max(1, w - 2), height: y(base) - y(base + v), fill: colours[k] ?? '#888', 'data-series': k, 'data-value': v },
        s('title', {}, `${b.bucket} ${k}: ${v}`)));
      base += v;
    }
    svg.append(g);
  });
  const step = Math.max(1, Math.ceil(buckets.length / 6));
  buckets.forEach((b, i) => {
    if (i % step === 0) svg.append(s('text', { x: pad.l + i * w + w / 2, y: height - pad.b + 14, 'text-anchor': 'middle', 'font-size': 10, fill: '#6a7483' }, b.bucket));
  });
  series.forEach((k, i) => {
    svg.append(s('rect', { x: pad.l + i * 80, y: height - 12, width: 10, height: 10, fill: colours[k] ?? '#888' }),
      s('text', { x: pad.l + i * 80 + 14, y: height - 3, 'font-size': 11, fill: '#1c2430' }, k));
  });
  return svg;
}

/** Horizontal bars, largest first. @param {{ label: string, value: number }[]} rows */
export function bars(rows, { width = 360, colour = '#2458d6', label = '' } = {}) {
  const row = 22;
  const height = Math.max(row, rows.length * row) + 4;
  const max = Math.max(1, ...rows.map((r) => r.value));
  const labelW = 150;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': label, class: 'chart' });
  rows.forEach((r, i) => {
    const y = i * row + 2;
    const w = ((width - labelW - 40) * r.value) / max;
    const name = r.label.length > 22 ? `${r.label.slice(0, 21)}…` : r.label;
    svg.append(s('text', { x: labelW - 6, y: y + 14, 'text-anchor': 'end', 'font-size': 11, fill: '#1c2430' }, name, s('title', {}, r.label)),
      s('rect', { x: labelW, y: y + 3, width: Math.max(1, w), height: row - 8, fill: colour, 'data-value': r.value }),
      s('text', { x: labelW + w + 4, y: y + 14, 'font-size': 11, fill: '#6a7483' }, r.value));
  });
  return svg;
}
