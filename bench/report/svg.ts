/**
 * @module bench/report/svg
 * A small line plot as standalone SVG text, with no dependencies: one line per series over a
 * shared x axis. The x axis is logarithmic (sessions: 1, 20, 100 are far apart), the y axis
 * linear from zero. Pure: data in, text out. Names and titles are XML-escaped.
 */

export interface Series {
  name: string;
  points: ReadonlyArray<{ x: number; y: number }>;
}

export interface PlotOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
}

const COLORS = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#666666'];

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A round step for about `n` ticks between 0 and `max`. */
export function niceStep(max: number, n = 5): number {
  if (!(max > 0)) return 1;
  const raw = max / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
}

export function linePlot(series: readonly Series[], o: PlotOptions): string {
  const W = o.width ?? 720;
  const H = o.height ?? 420;
  const left = 70;
  const right = 170;
  const top = 40;
  const bottom = 50;
  const pw = W - left - right;
  const ph = H - top - bottom;
  const pts = series.flatMap((s) => s.points.filter((p) => Number.isFinite(p.y) && p.x > 0));
  const xs = [...new Set(pts.map((p) => p.x))].sort((a, b) => a - b);
  const yMaxData = Math.max(0, ...pts.map((p) => p.y));
  const step = niceStep(yMaxData * 1.05);
  const yMax = Math.max(step, Math.ceil((yMaxData * 1.05) / step) * step);
  const lx0 = Math.log(xs[0] ?? 1);
  const lx1 = Math.log(xs[xs.length - 1] ?? 10);
  const X = (x: number): number => left + (lx1 === lx0 ? pw / 2 : ((Math.log(x) - lx0) / (lx1 - lx0)) * pw);
  const Y = (y: number): number => top + ph - (y / yMax) * ph;
  const r = (v: number): string => v.toFixed(1);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(o.title)}</text>`,
  );
  for (let y = 0; y <= yMax + step / 2; y += step) {
    out.push(
      `<line x1="${left}" y1="${r(Y(y))}" x2="${left + pw}" y2="${r(Y(y))}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${r(Y(y) + 4)}" text-anchor="end">${y.toLocaleString('en-US')}</text>`,
    );
  }
  for (const x of xs) {
    out.push(
      `<line x1="${r(X(x))}" y1="${top}" x2="${r(X(x))}" y2="${top + ph}" stroke="#eee"/>`,
      `<text x="${r(X(x))}" y="${top + ph + 18}" text-anchor="middle">${x}</text>`,
    );
  }
  out.push(
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
    `<text x="${left + pw / 2}" y="${H - 12}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`,
    `<text x="16" y="${top + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${top + ph / 2})">${escapeXml(o.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] as string;
    const ps = s.points.filter((p) => Number.isFinite(p.y) && p.x > 0).sort((a, b) => a.x - b.x);
    if (ps.length > 1) {
      const d = ps.map((p, k) => `${k ? 'L' : 'M'}${r(X(p.x))},${r(Y(p.y))}`).join(' ');
      out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
    }
    for (const p of ps) out.push(`<circle cx="${r(X(p.x))}" cy="${r(Y(p.y))}" r="3.5" fill="${color}"/>`);
    const ly = top + 10 + i * 20;
    out.push(
      `<line x1="${left + pw + 12}" y1="${ly}" x2="${left + pw + 32}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${left + pw + 38}" y="${ly + 4}">${escapeXml(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
