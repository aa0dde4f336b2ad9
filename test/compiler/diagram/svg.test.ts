import { describe, expect, it } from "vitest";
import { svgDiagram } from "../../../compiler/diagram/svg.ts";
import { towerShape, type Graph } from "../../../compiler/graph.ts";
import { networkInfo } from "../../../compiler/info.ts";
import { allModels, graphOf, modelPath, renameNode } from "./helpers.ts";
import { allElements, deepText, hasClass, parseXml, type XmlElement } from "./xml.ts";

const alexnet = graphOf(modelPath("alexnet.net"));

function parsed(graph: Graph) {
  const root = parseXml(svgDiagram(graph));
  const elements = allElements(root);
  const boxes = elements.filter((e) => e.name === "g" && hasClass(e, "box"));
  const edges = elements.filter((e) => e.name === "path" && hasClass(e, "edge"));
  return { root, elements, boxes, edges };
}

/** A box's visible lines, by class: name, op, shape, params. */
function lines(box: XmlElement): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of box.children.filter((c) => c.name === "text")) out[t.attrs.class] = deepText(t);
  return out;
}

const commas = (n: number) => n.toLocaleString("en-US");

describe("svg diagram of alexnet.net", () => {
  const { root, elements, boxes, edges } = parsed(alexnet);

  it("is a well-formed, self-contained SVG document", () => {
    expect(root.name).toBe("svg");
    expect(root.attrs.xmlns).toBe("http://www.w3.org/2000/svg");
    const [w, h] = [Number(root.attrs.width), Number(root.attrs.height)];
    expect(w).toBeGreaterThan(300);
    expect(h).toBeGreaterThan(w); // data flows down; the towers stand side by side
    expect(root.attrs.viewBox).toBe(`0 0 ${w} ${h}`);
    // Nothing fetched from elsewhere: no scripts, images, foreign objects or external references.
    for (const e of elements) {
      expect(["script", "image", "foreignObject", "use"]).not.toContain(e.name);
      for (const [k, v] of Object.entries(e.attrs)) {
        if (k === "xmlns") continue;
        expect(v).not.toMatch(/^(https?:|file:|data:)/);
        if (/url\(/.test(v)) expect(v).toMatch(/^url\(#[\w-]+\)$/);
      }
    }
  });

  it("titles the picture with the network and its 60,965,224 parameters", () => {
    const title = root.children.find((c) => c.name === "title")!;
    expect(deepText(title)).toBe(
      "alexnet: 2 towers · 60,965,224 parameters · 724,406,816 multiply-adds per image",
    );
  });

  it("draws one box per tower for every split layer, one for fc8 on tower 0, one shared box for image and loss", () => {
    const info = networkInfo(alexnet);
    expect(boxes).toHaveLength(1 + 21 * 2 + 1 + 1);
    for (const layer of info.layers) {
      const own = boxes.filter((b) => b.attrs["data-layer"] === layer.layer);
      const expected = layer.layer === "fc8" ? ["0"] : layer.layer === "loss" ? ["all"] : ["0", "1"];
      expect(own.map((b) => b.attrs["data-tower"])).toEqual(expected);
    }
    expect(boxes.filter((b) => b.attrs["data-layer"] === "image").map((b) => b.attrs["data-tower"])).toEqual([
      "all",
    ]);
  });

  it("labels each box with its per-tower shape and parameters, as alexc info counts them", () => {
    const info = networkInfo(alexnet);
    for (const layer of info.layers) {
      const own = boxes.filter((b) => b.attrs["data-layer"] === layer.layer);
      for (const box of own) {
        const l = lines(box);
        expect(l.name).toBe(layer.layer);
        expect(l.shape).toBe(layer.outputPerTower.length ? layer.outputPerTower.join("×") : "scalar");
        if (layer.params) expect(l.params).toBe(`${commas(layer.params / own.length)} params`);
        else expect(l.params).toBeUndefined();
      }
    }
  });

  it("matches the paper's per-tower numbers (ALEXNET.md)", () => {
    const box = (layer: string, tower = "0") =>
      lines(boxes.find((b) => b.attrs["data-layer"] === layer && b.attrs["data-tower"] === tower)!);
    expect(box("conv1")).toMatchObject({ shape: "48×55×55", params: "17,472 params", op: "conv 11×11 /4" });
    expect(box("conv2", "1")).toMatchObject({ shape: "128×27×27", op: "conv 5×5" });
    expect(box("pool2")).toMatchObject({ shape: "128×13×13", op: "maxpool 3×3 /2" });
    expect(box("conv3")).toMatchObject({ shape: "192×13×13" });
    expect(box("pool5")).toMatchObject({ shape: "128×6×6" });
    expect(box("fc6")).toMatchObject({ shape: "2048", params: "18,876,416 params" });
    expect(box("fc8")).toMatchObject({ shape: "1000", params: "4,097,000 params" });
    expect(box("image", "all")).toMatchObject({ shape: "3×224×224" });
  });

  it("lists every layer's total parameters in the parameter column", () => {
    const column = elements.find((e) => e.name === "g" && hasClass(e, "layer-params"))!;
    const totals = Object.fromEntries(column.children.map((t) => [t.attrs["data-layer"], deepText(t)]));
    const info = networkInfo(alexnet);
    expect(totals).toEqual(
      Object.fromEntries(info.layers.filter((l) => l.params).map((l) => [l.layer, commas(l.params)])),
    );
    expect(totals.conv1).toBe("34,944");
  });

  it("marks exactly the paper's cross-tower reads: conv3, fc6, fc7 and fc8 read the other tower", () => {
    const cross = edges
      .filter((e) => hasClass(e, "cross"))
      .map((e) => `${e.attrs["data-from"]} ${e.attrs["data-to"]}`);
    expect(cross.sort()).toEqual(
      [
        "pool2@t0 conv3@t1",
        "pool2@t1 conv3@t0",
        "pool5@t0 fc6@t1",
        "pool5@t1 fc6@t0",
        "drop6@t0 fc7@t1",
        "drop6@t1 fc7@t0",
        "drop7@t1 fc8@t0",
      ].sort(),
    );
    // conv2, conv4 and conv5 read only their own tower.
    for (const layer of ["conv2", "conv4", "conv5"])
      for (const e of edges.filter((e) => e.attrs["data-to"].startsWith(`${layer}@`)))
        expect(e.attrs["data-from"].split("@")[1]).toBe(e.attrs["data-to"].split("@")[1]);
  });

  it("draws cross-tower edges visibly differently from tower-local ones", () => {
    const local = edges.filter((e) => hasClass(e, "local"));
    const cross = edges.filter((e) => hasClass(e, "cross"));
    expect(local.length).toBe(2 * 20 + 1); // 20 within each tower, and drop7@t0 → fc8@t0
    for (const e of local) expect(e.attrs["stroke-dasharray"]).toBeUndefined();
    for (const e of cross) expect(e.attrs["stroke-dasharray"]).toBeTruthy();
    const colours = (list: XmlElement[]) => new Set(list.map((e) => e.attrs.stroke));
    expect(colours(local).size).toBe(1);
    expect(colours(cross).size).toBe(1);
    expect([...colours(cross)][0]).not.toBe([...colours(local)][0]);
    expect(Number(cross[0].attrs["stroke-width"])).toBeGreaterThan(Number(local[0].attrs["stroke-width"]));
    // Each kind's arrowhead is defined, in the edge's colour.
    for (const e of [...local, ...cross]) {
      const id = /^url\(#(.+)\)$/.exec(e.attrs["marker-end"])![1];
      const marker = elements.find((m) => m.name === "marker" && m.attrs.id === id)!;
      expect(marker.children[0].attrs.fill).toBe(e.attrs.stroke);
    }
  });

  it("has a legend that explains local and cross-tower edges with the edges' own styles", () => {
    const legend = elements.find((e) => e.name === "g" && hasClass(e, "legend"))!;
    const entry = (kind: string) => legend.children.find((c) => hasClass(c, `legend-${kind}`))!;
    for (const kind of ["local", "cross"]) {
      const sample = entry(kind).children.find((c) => c.name === "path")!;
      const edge = edges.find((e) => hasClass(e, kind))!;
      expect(sample.attrs.stroke).toBe(edge.attrs.stroke);
      expect(sample.attrs["stroke-dasharray"]).toBe(edge.attrs["stroke-dasharray"]);
    }
    expect(deepText(entry("local"))).toMatch(/own tower/);
    expect(deepText(entry("cross"))).toMatch(/another tower/);
  });

  it("gives every box and edge a tooltip", () => {
    for (const el of [...boxes, ...edges]) expect(el.children.some((c) => c.name === "title")).toBe(true);
    const conv3 = boxes.find((b) => b.attrs.id === "conv3@t1")!;
    expect(deepText(conv3.children.find((c) => c.name === "title")!)).toBe(
      [
        "conv3: conv 3×3, towers: cross",
        "tower 1: output 192×13×13 of 384×13×13",
        "442,560 of the layer's 885,120 parameters",
        "74,760,192 multiply-adds per image",
      ].join("\n"),
    );
    const edge = edges.find((e) => e.attrs["data-from"] === "drop7@t1")!;
    expect(deepText(edge.children[0])).toBe("drop7 (tower 1) → fc8 (tower 0): cross-tower");
  });

  it("is deterministic: the same graph gives the same bytes, compiled twice", () => {
    expect(svgDiagram(graphOf(modelPath("alexnet.net")))).toBe(svgDiagram(alexnet));
  });
});

describe("svg diagram of other networks", () => {
  it.each(allModels)("%s is well-formed, with one box per tower slice of every layer", (path) => {
    const graph = graphOf(path);
    const { boxes } = parsed(graph);
    const expected = graph.nodes.flatMap((n) => {
      const towers = n.layout.kind === "split" ? n.layout.towers : 1;
      return Array.from(
        { length: towers },
        () => `${n.name} ${towerShape(n.shape, n.layout).join("×") || "scalar"}`,
      );
    });
    const drawn = boxes
      .filter((b) => !graph.inputs.some((i) => i.name === b.attrs["data-layer"]))
      .map((b) => `${b.attrs["data-layer"]} ${lines(b).shape}`);
    expect(drawn).toEqual(expected);
    expect(new Set(boxes.map((b) => b.attrs.id)).size).toBe(boxes.length);
  });

  it("a one-tower network has no cross-tower edge, but its legend still explains them", () => {
    const { elements, edges } = parsed(graphOf(modelPath("fig1-relu.net")));
    expect(edges.filter((e) => hasClass(e, "cross"))).toHaveLength(0);
    expect(elements.filter((e) => e.name === "g" && hasClass(e, "lane"))).toHaveLength(1);
    expect(elements.some((e) => e.name === "g" && hasClass(e, "legend-cross"))).toBe(true);
  });

  it("escapes names that are not XML-safe, and keeps them readable", () => {
    const odd = `conv1<&>"'\u0001]]>`;
    const graph = {
      ...renameNode(graphOf(modelPath("alexnet-small.net")), "conv1", odd),
      name: `net & <co>`,
    };
    const svg = svgDiagram(graph);
    const { root, boxes, edges } = parsed(graph); // throws if not well-formed
    expect(svg).not.toContain(odd);
    const own = boxes.filter((b) => b.attrs["data-layer"] === `conv1<&>"'\uFFFD]]>`);
    expect(own).toHaveLength(2);
    expect(lines(own[0]).name).toBe(`conv1<&>"'\uFFFD]]>`);
    expect(edges.filter((e) => e.attrs["data-to"] === `conv1<&>"'\uFFFD]]>@t0`)).toHaveLength(1);
    expect(deepText(root.children.find((c) => c.name === "title")!)).toMatch(/^net & <co>: 2 towers/);
  });
});
