// The architecture diagram as a self-contained SVG: no scripts, no external fonts or stylesheets,
// colours as presentation attributes (so that renderers without CSS draw it the same), a <title>
// tooltip on every box and edge, and every piece of user text escaped. Classes and data-*
// attributes name what each element is (`box`, `edge cross`, data-layer, data-tower) for tools and
// tests; the look does not depend on them.
import type { Graph } from "../graph.ts";
import {
  boxLines,
  layoutDiagram,
  legendText,
  metrics as m,
  type DiagramLayout,
  type PlacedBox,
  type PlacedEdge,
} from "./layout.ts";
import type { DiagramModel, EdgeKind } from "./model.ts";
import { coord, groupDigits, shapeText, xmlAttr as attr, xmlText } from "./text.ts";

const font = "DejaVu Sans, Verdana, Arial, sans-serif";

/** Tower-local edges quiet, cross-tower edges loud: the paper's point is where the towers talk. */
const edgeStyle: Record<EdgeKind, { stroke: string; width: number; dash?: string }> = {
  local: { stroke: "#495057", width: 1.4 },
  cross: { stroke: "#e03131", width: 2.2, dash: "7 4" },
  shared: { stroke: "#adb5bd", width: 1.2 },
};

/** Box colours by what the layer does; layers with parameters stand out. */
const boxStyle: Record<string, { fill: string; stroke: string }> = {
  conv: { fill: "#dbe4ff", stroke: "#4263eb" },
  dense: { fill: "#d3f9d8", stroke: "#2f9e44" },
  maxpool: { fill: "#fff3bf", stroke: "#e8a200" },
  avgpool: { fill: "#fff3bf", stroke: "#e8a200" },
  lrn: { fill: "#f3d9fa", stroke: "#ae3ec9" },
  batchnorm: { fill: "#f3d9fa", stroke: "#ae3ec9" },
  input: { fill: "#ffffff", stroke: "#343a40" },
  softmax_cross_entropy: { fill: "#ffffff", stroke: "#343a40" },
};
const plainBox = { fill: "#f8f9fa", stroke: "#868e96" };
const laneFill = ["#eef3ff", "#eefaf1", "#fff6e8", "#f6efff"];

const towerName = (tower: number | null) => (tower === null ? "every tower" : `tower ${tower}`);
const kindName: Record<EdgeKind, string> = {
  local: "tower-local",
  cross: "cross-tower",
  shared: "shared by every tower",
};

function boxTooltip(model: DiagramModel, box: PlacedBox): string {
  const row = model.rows[box.row];
  const head = `${box.layer}: ${row.detail}${row.mode ? `, towers: ${row.mode}` : ""}`;
  const where =
    box.tower === null
      ? `held whole by every tower: ${shapeText(box.shape)}`
      : `${towerName(box.tower)}: output ${shapeText(box.shape)}${
          shapeText(box.shape) !== shapeText(row.output) ? ` of ${shapeText(row.output)}` : ""
        }`;
  const lines = [head, where];
  if (row.params)
    lines.push(
      box.params === row.params
        ? `${groupDigits(box.params)} parameters`
        : `${groupDigits(box.params)} of the layer's ${groupDigits(row.params)} parameters`,
    );
  if (box.macs) lines.push(`${groupDigits(box.macs)} multiply-adds per image`);
  return lines.join("\n");
}

function edgeTooltip(layout: DiagramLayout, edge: PlacedEdge): string {
  const box = (id: string) => layout.boxes.find((b) => b.id === id)!;
  const from = box(edge.from);
  const to = box(edge.to);
  return `${from.layer} (${towerName(from.tower)}) → ${to.layer} (${towerName(to.tower)}): ${kindName[edge.kind]}`;
}

function pathData(edge: PlacedEdge): string {
  const p = edge.points.map((pt) => `${coord(pt.x)} ${coord(pt.y)}`);
  if (edge.route === "curve") return `M ${p[0]} C ${p[1]}, ${p[2]}, ${p[3]}`;
  return `M ${p[0]} ${p
    .slice(1)
    .map((q) => `L ${q}`)
    .join(" ")}`;
}

function strokeAttrs(kind: EdgeKind): string {
  const s = edgeStyle[kind];
  return `stroke="${s.stroke}" stroke-width="${s.width}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}`;
}

function marker(kind: EdgeKind): string {
  // The arrow's tip is the path's end (refX at the tip), so it touches the box without entering it.
  return `    <marker id="arrow-${kind}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" markerUnits="userSpaceOnUse" orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="${edgeStyle[kind].stroke}"/></marker>`;
}

function text(x: number, y: number, content: string, attrs = ""): string {
  return `<text x="${coord(x)}" y="${coord(y)}"${attrs ? ` ${attrs}` : ""}>${xmlText(content)}</text>`;
}

function boxElement(model: DiagramModel, box: PlacedBox): string[] {
  const row = model.rows[box.row];
  const style = boxStyle[row.op] ?? plainBox;
  const l = boxLines(model, box);
  const right = box.x + box.width - m.boxPadding;
  const left = box.x + m.boxPadding;
  const tower = box.tower === null ? "all" : String(box.tower);
  return [
    `    <g class="box ${attr(row.op)}" id="${attr(box.id)}" data-layer="${attr(box.layer)}" data-tower="${tower}">`,
    `      <title>${xmlText(boxTooltip(model, box))}</title>`,
    `      <rect x="${coord(box.x)}" y="${coord(box.y)}" width="${coord(box.width)}" height="${coord(box.height)}" rx="5" fill="${style.fill}" stroke="${style.stroke}" stroke-width="1.2"/>`,
    `      ${text(left, box.y + 16, l.name, `class="name" font-size="${m.nameFont}" font-weight="bold" fill="#212529"`)}`,
    `      ${text(right, box.y + 16, l.detail, `class="op" font-size="${m.detailFont}" text-anchor="end" fill="#495057"`)}`,
    `      ${text(left, box.y + 32, l.shape, `class="shape" font-size="${m.nameFont}" fill="#212529"`)}`,
    ...(l.params
      ? [
          `      ${text(right, box.y + 32, l.params, `class="params" font-size="${m.detailFont}" text-anchor="end" fill="#495057"`)}`,
        ]
      : []),
    "    </g>",
  ];
}

/** Renders a laid-out diagram; `svgDiagram` lays out and renders in one call. */
export function renderSvg(layout: DiagramLayout): string {
  const { model } = layout;
  // Every kind gets its arrowhead, used or not: the legend shows the cross-tower one even when no
  // edge crosses.
  const kinds: EdgeKind[] = ["local", "cross", "shared"];
  const title = `${model.network}: ${layout.summary}`;
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.height}" viewBox="0 0 ${layout.width} ${layout.height}" font-family="${font}" role="img" aria-labelledby="diagram-title">`,
    `  <title id="diagram-title">${xmlText(title)}</title>`,
    `  <desc>${xmlText(
      "Data flows top to bottom, one row per layer; each tower is a lane. A box is one tower's part of a layer: its output shape and parameters in that tower. Solid grey edges stay in their tower; dashed red edges cross between towers.",
    )}</desc>`,
    "  <defs>",
    ...kinds.map(marker),
    "  </defs>",
    `  <rect class="background" width="${layout.width}" height="${layout.height}" fill="#ffffff"/>`,
    `  ${text(m.margin, m.margin + m.titleFont, model.network, `class="heading" font-size="${m.titleFont}" font-weight="bold" fill="#212529"`)}`,
    `  ${text(m.margin, m.margin + 38, layout.summary, `class="summary" font-size="${m.nameFont}" fill="#495057"`)}`,
    `  <g class="legend">`,
  ];
  layout.legendEntries.forEach((entry, i) => {
    const y = layout.legend.y + i * m.legendLine;
    const x = layout.legend.x;
    const sample =
      entry === "box"
        ? `<rect class="box-sample" x="${coord(x + 1)}" y="${coord(y - 10)}" width="24" height="12" rx="3" fill="${plainBox.fill}" stroke="${plainBox.stroke}"/>`
        : `<path class="edge-sample" d="M ${coord(x)} ${coord(y - 4)} L ${coord(x + 26)} ${coord(y - 4)}" fill="none" ${strokeAttrs(entry)} marker-end="url(#arrow-${entry})"/>`;
    out.push(
      `    <g class="legend-entry legend-${entry}">`,
      `      ${sample}`,
      `      ${text(x + 34, y, legendText[entry], `font-size="${m.detailFont}" fill="#343a40"`)}`,
      "    </g>",
    );
  });
  out.push("  </g>", `  <g class="lanes">`);
  for (const lane of layout.lanes) {
    out.push(
      `    <g class="lane" data-tower="${lane.tower}">`,
      `      <rect x="${coord(lane.x)}" y="${coord(lane.y)}" width="${coord(lane.width)}" height="${coord(lane.height)}" rx="8" fill="${laneFill[lane.tower % laneFill.length]}"/>`,
      `      ${text(lane.x + lane.width / 2, layout.headerY, `tower ${lane.tower}`, `font-size="${m.nameFont}" font-weight="bold" text-anchor="middle" fill="#343a40"`)}`,
      "    </g>",
    );
  }
  out.push("  </g>");
  out.push(
    `  ${text(layout.paramsX, layout.headerY, "params per layer", `class="params-header" font-size="${m.detailFont}" text-anchor="end" fill="#495057"`)}`,
  );
  // Cross-tower edges last, so that no tower-local edge hides one.
  out.push(`  <g class="edges" fill="none">`);
  const order: EdgeKind[] = ["shared", "local", "cross"];
  for (const kind of order)
    for (const edge of layout.edges.filter((e) => e.kind === kind))
      out.push(
        `    <path class="edge ${kind}" id="${attr(edge.id)}" data-from="${attr(edge.from)}" data-to="${attr(edge.to)}" d="${pathData(edge)}" ${strokeAttrs(kind)} stroke-linejoin="round" marker-end="url(#arrow-${kind})"><title>${xmlText(edgeTooltip(layout, edge))}</title></path>`,
      );
  out.push("  </g>", `  <g class="boxes">`);
  for (const box of layout.boxes) out.push(...boxElement(model, box));
  out.push("  </g>", `  <g class="layer-params">`);
  model.rows.forEach((row, r) => {
    if (!row.params) return;
    const attrs = `data-layer="${attr(row.layer)}" font-size="${m.nameFont}" text-anchor="end" fill="#212529"`;
    out.push(`    ${text(layout.paramsX, layout.rowCenters[r] + 4, groupDigits(row.params), attrs)}`);
  });
  out.push("  </g>", "</svg>", "");
  return out.join("\n");
}

export function svgDiagram(graph: Graph): string {
  return renderSvg(layoutDiagram(graph));
}
