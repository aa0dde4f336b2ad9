// Which edges of the diagram need routing, and where they run. An edge between adjacent rows, or
// one whose straight path meets no box in the rows it skips, is drawn directly. Any other edge
// (a value read several layers later past boxes in the way) leaves its source downwards, runs
// horizontally in the gap below it to a vertical track in a corridor — the gap between two lanes,
// or beside the outermost lanes — and comes back in the gap above its target. Tracks are shared by
// edges whose row spans do not overlap; each horizontal run gets its own height in its gap.
import type { DiagramBox, DiagramEdge, DiagramModel } from "./model.ts";

export interface Route {
  edge: DiagramEdge;
  /** 0: left of lane 0; k (0 < k < towers): between lanes k−1 and k; towers: right of the last lane. */
  corridor: number;
  /** Index among the corridor's tracks (see trackX). */
  track: number;
  /** The gaps (by the row above them) holding the exit and entry runs, and their slots there. */
  exitGap: number;
  entryGap: number;
  exitSlot: number;
  entrySlot: number;
}

export interface RowGap {
  /** An edge crosses this gap at a slant: the gap needs height to show which way it goes. */
  slanted: boolean;
  /** Horizontal runs of routed edges in this gap. */
  runs: number;
}

export interface RoutePlan {
  routes: Map<string, Route>;
  /** One per row: the gap below it (the last row's is unused). */
  gaps: RowGap[];
  /** Tracks used in the outer corridors, which widen the picture. */
  outerTracks: { left: number; right: number };
}

export interface LaneGeometry {
  towers: number;
  boxWidth: number;
  laneGap: number;
  trackStep: number;
  /** Keeps anchors and tracks off the boxes' rounded corners. */
  inset: number;
}

/** A box's horizontal centre, relative to the left edge of lane 0. */
export function laneCenter(g: LaneGeometry, tower: number | null): number {
  const span = g.towers * g.boxWidth + (g.towers - 1) * g.laneGap;
  return tower === null ? span / 2 : tower * (g.boxWidth + g.laneGap) + g.boxWidth / 2;
}

/** Tracks that fit in the gap between two lanes, alternating about its centre line. */
function innerCapacity(g: LaneGeometry): number {
  return 2 * Math.max(0, Math.floor((g.laneGap / 2 - 14) / g.trackStep)) + 1;
}

/** A track's x, relative to the left edge of lane 0. */
export function trackX(g: LaneGeometry, route: Pick<Route, "corridor" | "track">): number {
  const span = g.towers * g.boxWidth + (g.towers - 1) * g.laneGap;
  if (route.corridor === 0) return -10 - route.track * g.trackStep;
  if (route.corridor === g.towers) return span + 10 + route.track * g.trackStep;
  const center = route.corridor * (g.boxWidth + g.laneGap) - g.laneGap / 2;
  const k = route.track;
  return center + (k % 2 === 0 ? 1 : -1) * Math.ceil(k / 2) * g.trackStep;
}

export function planRoutes(model: DiagramModel, g: LaneGeometry): RoutePlan {
  const byId = new Map(model.boxes.map((b) => [b.id, b]));
  const byRow = model.rows.map(() => [] as DiagramBox[]);
  for (const box of model.boxes) byRow[box.row].push(box);
  const gaps: RowGap[] = model.rows.map(() => ({ slanted: false, runs: 0 }));
  const corridors = Array.from({ length: g.towers + 1 }, () => [] as [number, number][][]);
  const routes = new Map<string, Route>();
  const pending: Route[] = [];

  const blocked = (from: DiagramBox, to: DiagramBox) => {
    const a = laneCenter(g, from.tower);
    const b = laneCenter(g, to.tower);
    const lo = Math.min(a, b) - g.inset;
    const hi = Math.max(a, b) + g.inset;
    for (let r = from.row + 1; r < to.row; r++)
      for (const box of byRow[r]) {
        const c = laneCenter(g, box.tower);
        if (c + g.boxWidth / 2 > lo && c - g.boxWidth / 2 < hi) return true;
      }
    return false;
  };

  /** The first track of `corridor` whose edges share no rows with [from, to], or a new one. */
  const claim = (corridor: number, from: number, to: number): number | undefined => {
    const used = corridors[corridor];
    let track = used.findIndex((spans) => spans.every(([a, b]) => to <= a || from >= b));
    if (track < 0) {
      const inner = corridor > 0 && corridor < g.towers;
      if (inner && used.length >= innerCapacity(g)) return undefined;
      track = used.push([]) - 1;
    }
    used[track].push([from, to]);
    return track;
  };

  for (const edge of model.edges) {
    const from = byId.get(edge.from)!;
    const to = byId.get(edge.to)!;
    const dx = laneCenter(g, from.tower) !== laneCenter(g, to.tower);
    if (to.row === from.row + 1 || !blocked(from, to)) {
      if (dx) for (let r = from.row; r < to.row; r++) gaps[r].slanted = true;
      continue;
    }
    // The corridor nearest the middle of the edge's two ends; a full inner corridor sends the edge
    // to the outer corridor on the same side.
    const lean = (laneCenter(g, from.tower) + laneCenter(g, to.tower)) / 2;
    let corridor = Math.min(
      g.towers,
      Math.max(0, Math.round((lean + g.laneGap / 2) / (g.boxWidth + g.laneGap))),
    );
    let track = claim(corridor, from.row, to.row);
    if (track === undefined) {
      corridor = corridor <= g.towers / 2 ? 0 : g.towers;
      track = claim(corridor, from.row, to.row)!;
    }
    const route = {
      edge,
      corridor,
      track,
      exitGap: from.row,
      entryGap: to.row - 1,
      exitSlot: 0,
      entrySlot: 0,
    };
    route.exitSlot = gaps[route.exitGap].runs++;
    routes.set(edge.id, route);
    pending.push(route);
  }
  // Entry runs go below every exit run of their gap, so that no two runs of one gap share a height.
  for (const route of pending) route.entrySlot = gaps[route.entryGap].runs++;
  return {
    routes,
    gaps,
    outerTracks: { left: corridors[0].length, right: corridors[g.towers].length },
  };
}
