import { describe, expect, it } from "vitest";
import {
  layoutDiagram,
  metrics,
  spread,
  type DiagramLayout,
  type PlacedBox,
} from "../../../compiler/diagram/layout.ts";
import { diagramModel } from "../../../compiler/diagram/model.ts";
import { textWidth } from "../../../compiler/diagram/text.ts";
import { allModels, graphOf, modelPath, threeTowersPath } from "./helpers.ts";

const overlaps = (a: PlacedBox, b: PlacedBox) =>
  a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;

/** Whether the segment p–q (horizontal or vertical) passes through the inside of `box`. */
function crosses(box: PlacedBox, p: { x: number; y: number }, q: { x: number; y: number }): boolean {
  const [x0, x1] = [Math.min(p.x, q.x), Math.max(p.x, q.x)];
  const [y0, y1] = [Math.min(p.y, q.y), Math.max(p.y, q.y)];
  return x0 < box.x + box.width && x1 > box.x && y0 < box.y + box.height && y1 > box.y;
}

function checkGeometry(layout: DiagramLayout) {
  const boxes = new Map(layout.boxes.map((b) => [b.id, b]));
  for (const [i, a] of layout.boxes.entries()) {
    expect(a.x).toBeGreaterThanOrEqual(0);
    expect(a.y).toBeGreaterThanOrEqual(0);
    expect(a.x + a.width).toBeLessThanOrEqual(layout.width);
    expect(a.y + a.height).toBeLessThanOrEqual(layout.height);
    for (const b of layout.boxes.slice(i + 1)) expect(overlaps(a, b), `${a.id} overlaps ${b.id}`).toBe(false);
  }
  for (const edge of layout.edges) {
    const from = boxes.get(edge.from)!;
    const to = boxes.get(edge.to)!;
    const start = edge.points[0];
    const end = edge.points.at(-1)!;
    // An edge leaves its source's bottom side and arrives on its target's top side.
    expect(start.y).toBe(from.y + from.height);
    expect(start.x).toBeGreaterThan(from.x);
    expect(start.x).toBeLessThan(from.x + from.width);
    expect(end.y).toBe(to.y);
    expect(end.x).toBeGreaterThan(to.x);
    expect(end.x).toBeLessThan(to.x + to.width);
    // A routed edge's straight runs pass through no box; they stay on the canvas.
    if (edge.route === "polyline")
      for (let k = 0; k + 1 < edge.points.length; k++)
        for (const box of layout.boxes)
          expect(crosses(box, edge.points[k], edge.points[k + 1]), `${edge.id} runs through ${box.id}`).toBe(
            false,
          );
    for (const p of edge.points) {
      expect(p.x).toBeGreaterThanOrEqual(0);
      expect(p.x).toBeLessThanOrEqual(layout.width);
    }
  }
  // Two edges never meet one side of a box at the same point.
  const ends = [
    ...layout.edges.map((e) => `${e.from} bottom ${e.points[0].x}`),
    ...layout.edges.map((e) => `${e.to} top ${e.points.at(-1)!.x}`),
  ];
  expect(new Set(ends).size).toBe(ends.length);
}

describe("diagram layout", () => {
  const alexnet = layoutDiagram(graphOf(modelPath("alexnet.net")));

  it("stands the two towers side by side: one column per tower, one row per layer", () => {
    const column = (t: number) => new Set(alexnet.boxes.filter((b) => b.tower === t).map((b) => b.x));
    expect(column(0).size).toBe(1);
    expect(column(1).size).toBe(1);
    const [x0] = column(0);
    const [x1] = column(1);
    const width = alexnet.boxes[0].width;
    expect(x1).toBeGreaterThanOrEqual(x0 + width + 60);
    const rows = alexnet.model.rows.map(
      (_, r) => new Set(alexnet.boxes.filter((b) => b.row === r).map((b) => b.y)),
    );
    for (const ys of rows) expect(ys.size).toBe(1);
    const tops = rows.map((ys) => [...ys][0]);
    for (let r = 1; r < tops.length; r++) expect(tops[r]).toBeGreaterThan(tops[r - 1]);
    // The shared boxes sit between the towers.
    const image = alexnet.boxes.find((b) => b.id === "image@all")!;
    expect(image.x + image.width / 2).toBeCloseTo((x0 + x1 + width) / 2, 5);
  });

  it("draws tower-local edges straight down a lane and cross-tower edges across the gap", () => {
    for (const edge of alexnet.edges) {
      const [start, end] = [edge.points[0], edge.points.at(-1)!];
      if (edge.kind === "local") expect(edge.route).toBe("line");
      if (edge.kind === "local") expect(start.x).toBe(end.x);
      if (edge.kind === "cross") expect(edge.route).toBe("curve");
      if (edge.kind === "cross") expect(Math.abs(start.x - end.x)).toBeGreaterThan(metrics.laneGap);
    }
    // A gap that cross-tower edges cross is taller than one only tower-local edges cross.
    const gapBelow = (layer: string) => {
      const r = alexnet.model.rows.findIndex((row) => row.layer === layer);
      const box = (row: number) => alexnet.boxes.find((b) => b.row === row)!;
      return box(r + 1).y - (box(r).y + box(r).height);
    };
    expect(gapBelow("pool2")).toBe(metrics.slantedGap);
    expect(gapBelow("conv3")).toBe(metrics.plainGap);
  });

  it("makes boxes wide enough for their text", () => {
    for (const box of alexnet.boxes) {
      const row = alexnet.model.rows[box.row];
      const top = textWidth(box.layer, metrics.nameFont, true) + textWidth(row.detail, metrics.detailFont);
      expect(top + 2 * metrics.boxPadding).toBeLessThan(box.width);
    }
  });

  it.each(allModels)(
    "%s: no box overlaps another; every edge joins its boxes and routes around the rest",
    (path) => {
      checkGeometry(layoutDiagram(graphOf(path)));
    },
  );

  it("routes values read several rows later around the boxes in between", () => {
    const layout = layoutDiagram(graphOf(threeTowersPath));
    const routed = layout.edges.filter((e) => e.route === "polyline").map((e) => e.id);
    // stem → side skips the two blocks, which fill every lane; side → side_pool passes norm and pool.
    expect(routed).toEqual(
      expect.arrayContaining([
        "stem@t0->side@t1",
        "stem@t1->side@t1",
        "stem@t2->side@t1",
        "side@t1->side_pool@t1",
      ]),
    );
    // b.r → norm skips the row of `side`, which stands in tower 1 only: towers 0 and 2 go straight down.
    const direct = layout.edges.filter((e) => e.route !== "polyline").map((e) => e.id);
    expect(direct).toEqual(expect.arrayContaining(["b.r@t0->norm@t0", "b.r@t2->norm@t2"]));
    expect(routed).toContain("b.r@t1->norm@t1");
    checkGeometry(layout);
  });

  it("is a pure function of the graph", () => {
    const graph = graphOf(threeTowersPath);
    expect(JSON.stringify(layoutDiagram(graph))).toBe(
      JSON.stringify(layoutDiagram(graphOf(threeTowersPath))),
    );
  });
});

describe("diagram model", () => {
  it("gives stable ids: <layer>@t<k> per tower, <layer>@all for values every tower holds", () => {
    const model = diagramModel(graphOf(modelPath("alexnet.net")));
    expect(model.boxes.slice(0, 3).map((b) => b.id)).toEqual(["image@all", "conv1@t0", "conv1@t1"]);
    expect(model.boxes.filter((b) => b.layer === "fc8").map((b) => b.id)).toEqual(["fc8@t0"]);
    expect(model.edges.find((e) => e.to === "loss@all")).toEqual({
      id: "fc8@t0->loss@all",
      from: "fc8@t0",
      to: "loss@all",
      kind: "shared",
    });
  });

  it("reads every tower of a split input for a layer on one tower", () => {
    const model = diagramModel(graphOf(threeTowersPath));
    const into = (box: string) => model.edges.filter((e) => e.to === box).map((e) => `${e.from} ${e.kind}`);
    expect(into("side@t1")).toEqual(["stem@t0 cross", "stem@t1 local", "stem@t2 cross"]);
    expect(into("a.c@t2")).toEqual(["stem@t2 local"]);
    expect(into("both@all")).toEqual(["head@t2 shared", "side_pool@t1 shared"]);
    expect(into("fc@t0")).toEqual(["flat@all shared"]);
  });
});

describe("spread", () => {
  it("keeps ideal positions that are far enough apart", () => {
    expect(spread([10, 40, 70], 0, 100, 10)).toEqual([10, 40, 70]);
  });
  it("pushes coinciding positions apart, back inside the bounds", () => {
    expect(spread([50, 50], 0, 100, 10)).toEqual([50, 60]);
    expect(spread([100, 100, 100], 0, 100, 10)).toEqual([80, 90, 100]);
  });
  it("spaces evenly when the minimum gap cannot fit", () => {
    expect(spread([5, 5, 5], 0, 10, 10)).toEqual([0, 5, 10]);
  });
});
