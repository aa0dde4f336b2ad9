// Geometry of the architecture diagram, as plain data: the paper's Figure 2 turned upright. Data
// flows top to bottom, one row per layer; the towers are lanes side by side, so that a tower-local
// edge runs straight down its lane and a cross-tower edge crosses the gap between two lanes. Every
// coordinate is a function of the Graph alone (no measurement, no randomness): the same network
// gives the same picture, byte for byte.
import type { Graph } from "../graph.ts";
import {
  diagramModel,
  type DiagramBox,
  type DiagramEdge,
  type DiagramModel,
  type EdgeKind,
} from "./model.ts";
import { laneCenter, planRoutes, trackX, type LaneGeometry, type Route } from "./routes.ts";
import { groupDigits, paramsText, shapeText, textWidth } from "./text.ts";

export interface Point {
  x: number;
  y: number;
}

export interface PlacedBox extends DiagramBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface PlacedEdge extends DiagramEdge {
  /** `line`: two points; `curve`: a cubic Bézier (start, two controls, end); `polyline`: corners. */
  route: "line" | "curve" | "polyline";
  points: Point[];
}

export interface Lane {
  tower: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface DiagramLayout {
  model: DiagramModel;
  width: number;
  height: number;
  lanes: Lane[];
  boxes: PlacedBox[];
  edges: PlacedEdge[];
  /** The one-line summary under the network's name. */
  summary: string;
  /** Where the legend's first entry starts (its sample's left end, on the text baseline). */
  legend: Point;
  legendEntries: LegendEntry[];
  /** Lane titles and the per-layer parameter column's header share this baseline. */
  headerY: number;
  /** The right edge of the per-layer parameter column (its text is right-aligned). */
  paramsX: number;
  /** The vertical centre of every row, by row index. */
  rowCenters: number[];
}

/** Sizes in px; fonts in the emitter use the same numbers (see svg.ts). */
export const metrics = {
  margin: 20,
  nameFont: 12,
  detailFont: 11,
  titleFont: 16,
  boxHeight: 40,
  boxPadding: 10,
  minBoxWidth: 190,
  /** Wide enough that the X of two crossing edges reads as two edges, not a blur. */
  laneGap: 100,
  /** Edges meet a box this far inside its corners, clear of the rounded corners. */
  anchorInset: 22,
  anchorSpacing: 10,
  /** A row boundary crossed only by straight tower-local edges. */
  plainGap: 22,
  /** A row boundary crossed by slanted edges: they need height to show their direction. */
  slantedGap: 56,
  /** Vertical distance between horizontal runs of routed edges in one gap, and between tracks. */
  slotStep: 9,
  trackStep: 10,
  legendLine: 17,
  lanePadding: 14,
} as const;

export type LegendEntry = "box" | EdgeKind;

export const legendText: Record<LegendEntry, string> = {
  box: "one tower's part of a layer: its output shape and parameters",
  local: "tower-local: reads only its own tower's maps",
  cross: "cross-tower: reads another tower's maps (GPU to GPU)",
  shared: "to or from a value every tower holds whole",
};

export function summaryLine(model: DiagramModel): string {
  const towers = `${model.towers} tower${model.towers === 1 ? "" : "s"}`;
  return `${towers} · ${groupDigits(model.totals.params)} parameters · ${groupDigits(model.totals.macs)} multiply-adds per image`;
}

/** The text lines of a box: name and op on top, shape and parameters below. */
export function boxLines(
  model: DiagramModel,
  box: DiagramBox,
): { name: string; detail: string; shape: string; params: string } {
  const row = model.rows[box.row];
  return {
    name: box.layer,
    detail: row.detail,
    shape: shapeText(box.shape),
    params: box.params ? paramsText(box.params) : "",
  };
}

export function layoutDiagram(graph: Graph): DiagramLayout {
  const m = metrics;
  const model = diagramModel(graph);
  const towers = Math.max(1, model.towers);

  const widest = model.boxes.reduce((w, box) => {
    const l = boxLines(model, box);
    const top = textWidth(l.name, m.nameFont, true) + textWidth(l.detail, m.detailFont);
    const bottom = textWidth(l.shape, m.nameFont) + textWidth(l.params, m.detailFont);
    return Math.max(w, top + 14, bottom + 14);
  }, 0);
  const boxWidth = Math.max(m.minBoxWidth, Math.ceil((widest + 2 * m.boxPadding) / 2) * 2);

  const lanesGeometry: LaneGeometry = {
    towers,
    boxWidth,
    laneGap: m.laneGap,
    trackStep: m.trackStep,
    inset: m.anchorInset,
  };
  const { routes, gaps, outerTracks } = planRoutes(model, lanesGeometry);

  const corridor = (count: number) => (count ? count * m.trackStep + 10 : 0);
  const left = m.margin + corridor(outerTracks.left);
  const lanesRight = left + towers * boxWidth + (towers - 1) * m.laneGap;
  const paramsHeader = "params per layer";
  const paramsWidth = Math.max(
    textWidth(paramsHeader, m.detailFont),
    ...model.rows.map((r) => textWidth(groupDigits(r.params), m.nameFont)),
  );
  const paramsX = Math.ceil(lanesRight + corridor(outerTracks.right) + 24 + paramsWidth);
  const summary = summaryLine(model);
  // The cross-tower entry stays in a one-tower legend: its absence from the picture is the point.
  const legendEntries: LegendEntry[] = ["box", "local", "cross"];
  if (model.edges.some((e) => e.kind === "shared")) legendEntries.push("shared");
  const legendWidth = 34 + Math.max(...legendEntries.map((e) => textWidth(legendText[e], m.detailFont)));
  const headingWidth = Math.max(textWidth(summary, m.nameFont), textWidth(model.network, m.titleFont, true));
  const width = Math.ceil(Math.max(paramsX, m.margin + legendWidth, m.margin + headingWidth) + m.margin);

  const legend = { x: m.margin, y: m.margin + 64 };
  const headerY = legend.y + legendEntries.length * m.legendLine + 22;
  const lanesTop = headerY + 10;

  const gapHeight = (g: number) => {
    const { slanted, runs } = gaps[g];
    const base = slanted ? m.slantedGap : m.plainGap;
    return runs ? Math.max(base, 24 + (runs - 1) * m.slotStep) : base;
  };
  const rowTops: number[] = [];
  let y = lanesTop + m.lanePadding;
  for (let r = 0; r < model.rows.length; r++) {
    rowTops.push(y);
    y += m.boxHeight + (r + 1 < model.rows.length ? gapHeight(r) : 0);
  }
  const lanesBottom = y + m.lanePadding;
  const height = Math.ceil(lanesBottom + m.margin);

  const boxes: PlacedBox[] = model.boxes.map((box) => ({
    ...box,
    x: left + laneCenter(lanesGeometry, box.tower) - boxWidth / 2,
    y: rowTops[box.row],
    width: boxWidth,
    height: m.boxHeight,
  }));
  const placed = new Map(boxes.map((b) => [b.id, b]));
  const lanes: Lane[] = Array.from({ length: towers }, (_, tower) => ({
    tower,
    x: left + tower * (boxWidth + m.laneGap) - 12,
    y: lanesTop,
    width: boxWidth + 24,
    height: lanesBottom - lanesTop,
  }));

  const trackAt = (route: Route) => left + trackX(lanesGeometry, route);
  const gapTop = (g: number) => rowTops[g] + m.boxHeight;
  const slotY = (g: number, slot: number) => gapTop(g) + 12 + slot * m.slotStep;

  // Each edge meets its boxes at the point nearest where it comes from or goes to; ends that would
  // coincide on one side of a box are spread apart, in the order of their other ends so that they
  // do not cross, and every edge stays distinguishable.
  const centerX = (b: PlacedBox) => b.x + b.width / 2;
  const clampInto = (b: PlacedBox, x: number) =>
    Math.min(Math.max(x, b.x + m.anchorInset), b.x + b.width - m.anchorInset);
  type End = { edge: string; ideal: number; other: number };
  const sides = new Map<string, { box: PlacedBox; ends: End[] }>();
  const wish = (side: "top" | "bottom", box: PlacedBox, edge: string, toward: number, other: number) => {
    const key = `${side}:${box.id}`;
    if (!sides.has(key)) sides.set(key, { box, ends: [] });
    sides.get(key)!.ends.push({ edge, ideal: clampInto(box, toward), other });
  };
  for (const edge of model.edges) {
    const from = placed.get(edge.from)!;
    const to = placed.get(edge.to)!;
    const route = routes.get(edge.id);
    wish("bottom", from, edge.id, route ? trackAt(route) : centerX(to), centerX(to));
    wish("top", to, edge.id, route ? trackAt(route) : centerX(from), centerX(from));
  }
  const anchorX = new Map<string, number>();
  for (const [key, { box, ends }] of sides) {
    const side = key.slice(0, key.indexOf(":"));
    ends.sort((a, b) => a.ideal - b.ideal || a.other - b.other || (a.edge < b.edge ? -1 : 1));
    const xs = spread(
      ends.map((e) => e.ideal),
      box.x + m.anchorInset,
      box.x + box.width - m.anchorInset,
      m.anchorSpacing,
    );
    ends.forEach((e, i) => anchorX.set(`${side}:${e.edge}`, xs[i]));
  }

  const edges: PlacedEdge[] = model.edges.map((edge) => {
    const from = placed.get(edge.from)!;
    const to = placed.get(edge.to)!;
    const start = { x: anchorX.get(`bottom:${edge.id}`)!, y: from.y + from.height };
    const end = { x: anchorX.get(`top:${edge.id}`)!, y: to.y };
    const route = routes.get(edge.id);
    if (route) {
      const exitY = slotY(route.exitGap, route.exitSlot);
      const entryY = slotY(route.entryGap, route.entrySlot);
      const tx = trackAt(route);
      const points = [start, { x: start.x, y: exitY }, { x: tx, y: exitY }, { x: tx, y: entryY }];
      return { ...edge, route: "polyline", points: [...points, { x: end.x, y: entryY }, end] };
    }
    if (Math.abs(start.x - end.x) < 0.5) return { ...edge, route: "line", points: [start, end] };
    const bend = (end.y - start.y) / 2;
    const controls = [
      { x: start.x, y: start.y + bend },
      { x: end.x, y: end.y - bend },
    ];
    return { ...edge, route: "curve", points: [start, ...controls, end] };
  });

  return {
    model,
    width,
    height,
    summary,
    legendEntries,
    lanes,
    boxes,
    edges,
    legend,
    headerY,
    paramsX,
    rowCenters: rowTops.map((t) => t + m.boxHeight / 2),
  };
}

/**
 * Positions for sorted ideal x values: each at least `gap` right of the one before, the run shifted
 * back inside [lo, hi] when it overflows, and spaced evenly when even that cannot fit.
 */
export function spread(ideal: number[], lo: number, hi: number, gap: number): number[] {
  const xs: number[] = [];
  for (const x of ideal) xs.push(xs.length ? Math.max(x, xs[xs.length - 1] + gap) : x);
  const overflow = xs.length ? xs[xs.length - 1] - hi : 0;
  if (overflow > 0) for (let i = 0; i < xs.length; i++) xs[i] -= overflow;
  for (let i = 0; i < xs.length; i++) xs[i] = Math.max(xs[i], i ? xs[i - 1] + gap : lo);
  if (xs.length && xs[xs.length - 1] > hi) {
    const step = xs.length > 1 ? (hi - lo) / (xs.length - 1) : 0;
    return xs.map((_, i) => (xs.length > 1 ? lo + i * step : (lo + hi) / 2));
  }
  return xs;
}
