// Dependency-free SVG line charts for benchmark reports (log or linear axes, a legend, one panel each).

export interface Series {
  name: string;
  points: [number, number][];
  dashed?: boolean;
  /** Dotted line (e.g. a prediction). */
  dotted?: boolean;
  /** Index into the palette (default: the series' position), so related series share a colour. */
  color?: number;
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  logX?: boolean;
  logY?: boolean;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function niceTicks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const ticks: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v);
      }
    return ticks;
  }
  const span = hi - lo || 1;
  const step = 10 ** Math.floor(Math.log10(span / 5));
  const mult = [1, 2, 5, 10].find((m) => span / (m * step) <= 6) ?? 10;
  const s = mult * step;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / s) * s; v <= hi + 1e-9; v += s) ticks.push(Number(v.toPrecision(6)));
  return ticks;
}

function fmtTick(v: number): string {
  if (v >= 1000 && v % 1024 === 0) return `${v / 1024}k`;
  if (v >= 1000) return `${Number((v / 1000).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

/** The opening of an SVG document: white background, an optional title centred on top. */
function svgStart(width: number, height: number, title?: string): string[] {
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  if (title)
    parts.push(
      `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
    );
  return parts;
}

/** Render panels side by side into one SVG document. */
export function renderSvg(
  panels: Panel[],
  opts: { width?: number; height?: number; title?: string } = {},
): string {
  const W = opts.width ?? 420;
  const H = opts.height ?? 320;
  const top = opts.title ? 30 : 0;
  const m = { l: 62, r: 12, t: 30, b: 48 };
  const parts = svgStart(W * panels.length, H + top, opts.title);
  panels.forEach((p, pi) => {
    const ox = pi * W;
    const oy = top;
    const xs = p.series.flatMap((s) => s.points.map((q) => q[0]));
    const ys = p.series
      .flatMap((s) => s.points.map((q) => q[1]))
      .filter((v) => Number.isFinite(v) && (!p.logY || v > 0));
    if (xs.length === 0 || ys.length === 0) return;
    let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    if (!p.logY) y0 = Math.min(0, y0);
    if (x0 === x1) [x0, x1] = [x0 * 0.9, x1 * 1.1 + 1];
    if (y0 === y1) [y0, y1] = [y0 * 0.9, y1 * 1.1 + 1];
    if (p.logY) [y0, y1] = [y0 / 1.3, y1 * 1.3];
    else y1 = y1 * 1.08;
    const tx = (v: number) =>
      p.logX ? (Math.log(v) - Math.log(x0)) / (Math.log(x1) - Math.log(x0)) : (v - x0) / (x1 - x0);
    const ty = (v: number) =>
      p.logY ? (Math.log(v) - Math.log(y0)) / (Math.log(y1) - Math.log(y0)) : (v - y0) / (y1 - y0);
    const X = (v: number) => ox + m.l + tx(v) * (W - m.l - m.r);
    const Y = (v: number) => oy + H - m.b - ty(v) * (H - m.t - m.b);
    parts.push(
      `<text x="${ox + W / 2}" y="${oy + 18}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`,
    );
    parts.push(
      `<rect x="${ox + m.l}" y="${oy + m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#888"/>`,
    );
    for (const v of niceTicks(x0, x1, p.logX ?? false)) {
      parts.push(
        `<line x1="${X(v)}" y1="${oy + H - m.b}" x2="${X(v)}" y2="${oy + H - m.b + 4}" stroke="#888"/>`,
      );
      parts.push(`<text x="${X(v)}" y="${oy + H - m.b + 16}" text-anchor="middle">${fmtTick(v)}</text>`);
    }
    for (const v of niceTicks(y0, y1, p.logY ?? false)) {
      parts.push(`<line x1="${ox + m.l}" y1="${Y(v)}" x2="${ox + W - m.r}" y2="${Y(v)}" stroke="#eee"/>`);
      parts.push(`<text x="${ox + m.l - 5}" y="${Y(v) + 4}" text-anchor="end">${fmtTick(v)}</text>`);
    }
    parts.push(
      `<text x="${ox + m.l + (W - m.l - m.r) / 2}" y="${oy + H - 8}" text-anchor="middle">${esc(p.xLabel)}</text>`,
    );
    parts.push(
      `<text transform="translate(${ox + 14},${oy + m.t + (H - m.t - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`,
    );
    p.series.forEach((s, si) => {
      const color = COLORS[(s.color ?? si) % COLORS.length];
      const dash = s.dotted ? ' stroke-dasharray="2,3"' : s.dashed ? ' stroke-dasharray="6,4"' : "";
      const pts = s.points
        .filter((q) => Number.isFinite(q[1]) && (!p.logY || q[1] > 0))
        .sort((a, b) => a[0] - b[0]);
      if (pts.length === 0) return;
      const d = pts
        .map((q, i) => `${i === 0 ? "M" : "L"}${X(q[0]).toFixed(1)},${Y(q[1]).toFixed(1)}`)
        .join(" ");
      parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
      for (const q of pts)
        parts.push(`<circle cx="${X(q[0]).toFixed(1)}" cy="${Y(q[1]).toFixed(1)}" r="3" fill="${color}"/>`);
      const ly = oy + m.t + 14 + si * 15;
      parts.push(
        `<line x1="${ox + m.l + 8}" y1="${ly - 4}" x2="${ox + m.l + 26}" y2="${ly - 4}" stroke="${color}" stroke-width="2"${dash}/>`,
      );
      parts.push(`<text x="${ox + m.l + 30}" y="${ly}">${esc(s.name)}</text>`);
    });
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

/** A dot-chart panel: one line per category (top to bottom), one marker per series on it. */
export interface DotPanel {
  title: string;
  xLabel: string;
  categories: string[];
  /** values[i] belongs to categories[i]; null or non-finite values are not drawn. */
  series: { name: string; values: (number | null)[] }[];
}

/**
 * Dot charts (Cleveland style) in a grid: for tables whose rows are many named settings (Table 1's rows),
 * a line per row reads better than one line series per row. Panels share the category list's order.
 */
export function renderDotChart(
  panels: DotPanel[],
  opts: { title?: string; columns?: number; width?: number; rowHeight?: number } = {},
): string {
  const cols = Math.max(1, Math.min(opts.columns ?? panels.length, panels.length));
  const gridRows = Math.ceil(panels.length / cols);
  const longest = Math.max(1, ...panels.flatMap((p) => p.categories.map((c) => c.length)));
  const label = Math.min(320, 12 + longest * 6.5);
  const W = opts.width ?? label + 360;
  const rowH = opts.rowHeight ?? 18;
  const nCat = Math.max(1, ...panels.map((p) => p.categories.length));
  const m = { t: 30, b: 44, r: 14 };
  const H = m.t + nCat * rowH + m.b;
  const legendH = 22;
  const top = (opts.title ? 30 : 0) + legendH;
  const parts = svgStart(W * cols, top + H * gridRows, opts.title);
  // One legend for all panels (the series are the same everywhere).
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  names.forEach((n, i) => {
    const x = 20 + i * 110;
    const y = top - 8;
    parts.push(`<circle cx="${x}" cy="${y - 4}" r="4" fill="${COLORS[i % COLORS.length]}"/>`);
    parts.push(`<text x="${x + 8}" y="${y}">${esc(n)}</text>`);
  });
  panels.forEach((p, pi) => {
    const ox = (pi % cols) * W;
    const oy = top + Math.floor(pi / cols) * H;
    const vals = p.series
      .flatMap((s) => s.values)
      .filter((v): v is number => v !== null && Number.isFinite(v));
    parts.push(
      `<text x="${ox + label + (W - label - m.r) / 2}" y="${oy + 18}" text-anchor="middle" font-weight="bold">${esc(p.title)}</text>`,
    );
    if (vals.length === 0) return;
    let [x0, x1] = [Math.min(...vals), Math.max(...vals)];
    if (x0 === x1) [x0, x1] = [x0 - 0.5, x1 + 0.5];
    const pad = (x1 - x0) * 0.06;
    [x0, x1] = [x0 - pad, x1 + pad];
    const X = (v: number) => ox + label + ((v - x0) / (x1 - x0)) * (W - label - m.r);
    const Y = (i: number) => oy + m.t + (i + 0.5) * rowH;
    const bottom = oy + m.t + p.categories.length * rowH;
    parts.push(
      `<rect x="${ox + label}" y="${oy + m.t}" width="${W - label - m.r}" height="${p.categories.length * rowH}" fill="none" stroke="#888"/>`,
    );
    for (const v of niceTicks(x0, x1, false)) {
      parts.push(`<line x1="${X(v)}" y1="${oy + m.t}" x2="${X(v)}" y2="${bottom}" stroke="#eee"/>`);
      parts.push(`<text x="${X(v)}" y="${bottom + 14}" text-anchor="middle">${fmtTick(v)}</text>`);
    }
    parts.push(
      `<text x="${ox + label + (W - label - m.r) / 2}" y="${bottom + 32}" text-anchor="middle">${esc(p.xLabel)}</text>`,
    );
    p.categories.forEach((c, i) => {
      parts.push(
        `<line x1="${ox + label}" y1="${Y(i)}" x2="${ox + W - m.r}" y2="${Y(i)}" stroke="#f3f3f3"/>`,
      );
      parts.push(`<text x="${ox + label - 6}" y="${Y(i) + 4}" text-anchor="end">${esc(c)}</text>`);
    });
    p.series.forEach((s) => {
      const color = COLORS[names.indexOf(s.name) % COLORS.length];
      s.values.forEach((v, i) => {
        if (v === null || !Number.isFinite(v) || i >= p.categories.length) return;
        parts.push(
          `<circle cx="${X(v).toFixed(1)}" cy="${Y(i).toFixed(1)}" r="3.5" fill="${color}" fill-opacity="0.85"/>`,
        );
      });
    });
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
