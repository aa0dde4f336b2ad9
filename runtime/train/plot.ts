// Training curves as a standalone SVG: two panels, the training loss and the top-1 error (train vs
// validation), with ticked axes, a legend and dashed marks where the learning rate changed.
// Pure string generation, so the runner can rewrite `curves.svg` after every epoch without a
// plotting dependency, and a test can inspect the markup.
import type { EpochRecord } from "./metrics.ts";

export interface PlotOptions {
  /** Drawn above the panels, e.g. the network name. */
  title?: string;
  /** Total size in pixels; defaults 900 × 420. */
  width?: number;
  height?: number;
}

interface Series {
  label: string;
  color: string;
  points: { x: number; y: number | null }[];
}

interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

const TRAIN = "#1f77b4";
const VAL = "#ff7f0e";
const LR = "#888888";
const FONT = 12;

export function plotCurves(records: readonly EpochRecord[], opts: PlotOptions = {}): string {
  const width = opts.width ?? 900;
  const height = opts.height ?? 420;
  const top = opts.title === undefined ? 10 : 34;
  const gap = 30;
  const panelW = (width - gap) / 2;
  const left: Box = { x: 0, y: top, w: panelW, h: height - top };
  const right: Box = { x: panelW + gap, y: top, w: panelW, h: height - top };

  const epochs = records.map((r) => r.epoch);
  // Epoch e used lr_e; a change between consecutive epochs is drawn half-way between them.
  const lrChanges: { x: number; lr: number }[] = [];
  for (let i = 1; i < records.length; i++) {
    if (records[i].lr !== records[i - 1].lr && Number.isFinite(records[i].lr)) {
      lrChanges.push({ x: (records[i - 1].epoch + records[i].epoch) / 2, lr: records[i].lr });
    }
  }
  const percent = (v: number | null) => (v === null || !Number.isFinite(v) ? null : 100 * v);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
      `viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="${FONT}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
  ];
  if (opts.title !== undefined) {
    parts.push(
      `<text x="${width / 2}" y="22" text-anchor="middle" font-size="${FONT + 4}" font-weight="bold">${escape(opts.title)}</text>`,
    );
  }
  parts.push(
    panel(left, "Training loss", "loss", epochs, lrChanges, false, [
      { label: "train", color: TRAIN, points: records.map((r) => ({ x: r.epoch, y: finite(r.trainLoss) })) },
    ]),
    panel(right, "Top-1 error", "error (%)", epochs, lrChanges, true, [
      { label: "train", color: TRAIN, points: records.map((r) => ({ x: r.epoch, y: percent(r.trainTop1) })) },
      {
        label: "validation",
        color: VAL,
        points: records.map((r) => ({ x: r.epoch, y: percent(r.valTop1) })),
      },
    ]),
    "</svg>",
  );
  return parts.join("\n") + "\n";
}

function panel(
  box: Box,
  title: string,
  yLabel: string,
  epochs: number[],
  lrChanges: { x: number; lr: number }[],
  isPercent: boolean,
  series: Series[],
): string {
  // Plot area inside the panel: room for tick labels and axis titles on the left and below, and
  // above for the learning-rate labels (inside, they would collide with the legend and curves).
  const area: Box = { x: box.x + 62, y: box.y + 38, w: box.w - 62 - 12, h: box.h - 38 - 46 };
  const ys = series.flatMap((s) => s.points.flatMap((p) => (p.y === null ? [] : [p.y])));
  const xTicks = niceTicks(
    epochs.length > 0 ? Math.min(...epochs) : 1,
    epochs.length > 0 ? Math.max(...epochs) : 10,
    8,
    true,
  );
  // Losses and errors are ≥ 0: anchor the axis at 0 so curves are read against a true baseline.
  const yMax = ys.length > 0 ? Math.max(...ys) : isPercent ? 100 : 1;
  const yTicks = niceTicks(Math.min(0, ...ys), isPercent ? Math.min(yMax, 100) : yMax, 6, false);
  const sx = (x: number) => area.x + ((x - xTicks.lo) / (xTicks.hi - xTicks.lo)) * area.w;
  const sy = (y: number) => area.y + area.h - ((y - yTicks.lo) / (yTicks.hi - yTicks.lo)) * area.h;
  const out: string[] = [`<g>`];
  out.push(
    `<text x="${fmt(area.x + area.w / 2)}" y="${fmt(box.y + 14)}" text-anchor="middle" font-size="${FONT + 2}" font-weight="bold">${escape(title)}</text>`,
  );
  // Grid and ticks.
  for (const t of yTicks.ticks) {
    const y = fmt(sy(t));
    out.push(`<line x1="${fmt(area.x)}" y1="${y}" x2="${fmt(area.x + area.w)}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<line x1="${fmt(area.x - 5)}" y1="${y}" x2="${fmt(area.x)}" y2="${y}" stroke="#333"/>`);
    out.push(
      `<text x="${fmt(area.x - 8)}" y="${y}" text-anchor="end" dominant-baseline="middle">${label(t, yTicks.step)}</text>`,
    );
  }
  for (const t of xTicks.ticks) {
    const x = fmt(sx(t));
    const yBase = area.y + area.h;
    out.push(`<line x1="${x}" y1="${fmt(area.y)}" x2="${x}" y2="${fmt(yBase)}" stroke="#f0f0f0"/>`);
    out.push(`<line x1="${x}" y1="${fmt(yBase)}" x2="${x}" y2="${fmt(yBase + 5)}" stroke="#333"/>`);
    out.push(`<text x="${x}" y="${fmt(yBase + 18)}" text-anchor="middle">${label(t, xTicks.step)}</text>`);
  }
  // Learning-rate changes, behind the data.
  for (const change of lrChanges) {
    const x = fmt(sx(change.x));
    out.push(
      `<line x1="${x}" y1="${fmt(area.y)}" x2="${x}" y2="${fmt(area.y + area.h)}" stroke="${LR}" stroke-dasharray="4 3"/>`,
    );
    out.push(
      `<text x="${x}" y="${fmt(area.y - 5)}" font-size="${FONT - 2}" fill="${LR}" text-anchor="middle">lr ${escape(formatLr(change.lr))}</text>`,
    );
  }
  // Axes and their titles.
  out.push(
    `<rect x="${fmt(area.x)}" y="${fmt(area.y)}" width="${fmt(area.w)}" height="${fmt(area.h)}" fill="none" stroke="#333"/>`,
    `<text x="${fmt(area.x + area.w / 2)}" y="${fmt(box.y + box.h - 8)}" text-anchor="middle">epoch</text>`,
    `<text transform="translate(${fmt(box.x + 16)} ${fmt(area.y + area.h / 2)}) rotate(-90)" text-anchor="middle">${escape(yLabel)}</text>`,
  );
  if (ys.length === 0) {
    out.push(
      `<text x="${fmt(area.x + area.w / 2)}" y="${fmt(area.y + area.h / 2)}" text-anchor="middle" fill="#999">no data yet</text>`,
    );
  }
  // Data: one polyline per run of measured points (a null breaks the line), dots when sparse.
  for (const s of series) {
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1)
        out.push(`<polyline points="${run.join(" ")}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
      run = [];
    };
    for (const p of s.points) {
      if (p.y === null) {
        flush();
        continue;
      }
      run.push(`${fmt(sx(p.x))},${fmt(sy(p.y))}`);
      if (s.points.length <= 60)
        out.push(`<circle cx="${fmt(sx(p.x))}" cy="${fmt(sy(p.y))}" r="2.5" fill="${s.color}"/>`);
    }
    flush();
  }
  // Legend, top right inside the plot area.
  const entries: { label: string; color: string; dashed?: boolean }[] = series.map((s) => ({
    label: s.label,
    color: s.color,
  }));
  if (lrChanges.length > 0) entries.push({ label: "lr change", color: LR, dashed: true });
  const legendW = 20 + 8 + Math.max(...entries.map((e) => e.label.length)) * 7 + 12;
  const lx = area.x + area.w - legendW - 8;
  const ly = area.y + 8;
  out.push(
    `<rect x="${fmt(lx)}" y="${fmt(ly)}" width="${fmt(legendW)}" height="${entries.length * 18 + 8}" fill="#ffffff" fill-opacity="0.85" stroke="#ccc"/>`,
  );
  entries.forEach((e, i) => {
    const y = ly + 14 + i * 18;
    const dash = e.dashed ? ` stroke-dasharray="4 3"` : "";
    out.push(
      `<line x1="${fmt(lx + 8)}" y1="${fmt(y)}" x2="${fmt(lx + 28)}" y2="${fmt(y)}" stroke="${e.color}" stroke-width="2"${dash}/>`,
      `<text x="${fmt(lx + 34)}" y="${fmt(y)}" dominant-baseline="middle">${escape(e.label)}</text>`,
    );
  });
  out.push("</g>");
  return out.join("\n");
}

/**
 * Ticks at 1, 2 or 5 × 10^n covering [min, max] with about `count` intervals; `integer` keeps the
 * step ≥ 1 (epochs). A degenerate range is widened so the scale never divides by zero.
 */
export function niceTicks(
  min: number,
  max: number,
  count: number,
  integer: boolean,
): { lo: number; hi: number; step: number; ticks: number[] } {
  if (!(max > min)) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= integer ? 1 : pad;
    max += integer ? 1 : pad;
  }
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const normalised = raw / magnitude;
  let step = (normalised <= 1 ? 1 : normalised <= 2 ? 2 : normalised <= 5 ? 5 : 10) * magnitude;
  if (integer) step = Math.max(1, Math.round(step));
  // Ticks are integer multiples of the step, rounded to 12 significant digits so that 3 × 0.1
  // is 0.3 (not 0.30000000000000004) in the markup and in comparisons.
  const clean = (k: number) => Number((k * step).toPrecision(12));
  const first = Math.floor(min / step + 1e-9);
  const last = Math.ceil(max / step - 1e-9);
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(clean(k));
  return { lo: clean(first), hi: clean(last), step, ticks };
}

function label(value: number, step: number): string {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return value.toFixed(decimals);
}

function formatLr(lr: number): string {
  return lr >= 0.001 ? String(Number(lr.toPrecision(3))) : lr.toExponential(1);
}

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** Coordinates with two decimals: sub-pixel precision without 17-digit noise in the markup. */
function fmt(v: number): string {
  return String(Math.round(v * 100) / 100);
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
