import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { dotDiagram } from "../../../compiler/diagram/dot.ts";
import { networkInfo } from "../../../compiler/info.ts";
import { dotQuote } from "../../../compiler/diagram/text.ts";
import { labelText, parseDot } from "./dot-syntax.ts";
import { allModels, graphOf, modelPath, renameNode } from "./helpers.ts";

const alexnet = graphOf(modelPath("alexnet.net"));
const hasGraphviz = spawnSync("dot", ["-V"]).status === 0;

describe("dot diagram of alexnet.net", () => {
  const text = dotDiagram(alexnet);
  const dot = parseDot(text);

  it("is a DOT digraph named after the network", () => {
    expect(dot.directed).toBe(true);
    expect(dot.name).toBe("alexnet");
    expect(dot.graphAttrs.rankdir).toBe("TB");
    expect(labelText(dot.graphAttrs.label)).toMatch(/^alexnet: 2 towers, 60,965,224 parameters\n/);
  });

  it("puts each tower in its own cluster and the shared values outside both", () => {
    expect([...dot.subgraphs.keys()]).toEqual(["cluster_tower0", "cluster_tower1"]);
    const tower0 = dot.subgraphs.get("cluster_tower0")!;
    const tower1 = dot.subgraphs.get("cluster_tower1")!;
    expect(tower0).toHaveLength(22); // conv1 … drop7 and fc8
    expect(tower1).toHaveLength(21);
    expect(tower0.every((id) => id.endsWith("@t0"))).toBe(true);
    expect(tower1.every((id) => id.endsWith("@t1"))).toBe(true);
    for (const shared of ["image@all", "loss@all"]) {
      expect(dot.nodes.has(shared)).toBe(true);
      expect([...tower0, ...tower1]).not.toContain(shared);
    }
  });

  it("labels each node with its per-tower shape and parameters, as alexc info counts them", () => {
    for (const layer of networkInfo(alexnet).layers) {
      const ids = [...dot.nodes.keys()].filter((id) => id.startsWith(`${layer.layer}@`));
      for (const id of ids) {
        const lines = labelText(dot.nodes.get(id)!.label).split("\n");
        expect(lines[0]).toBe(layer.layer);
        expect(lines[2]).toBe(layer.outputPerTower.join("×") || "scalar");
        if (layer.params)
          expect(lines[3]).toBe(`${(layer.params / ids.length).toLocaleString("en-US")} params`);
      }
    }
    expect(labelText(dot.nodes.get("conv1@t1")!.label)).toBe("conv1\nconv 11×11 /4\n48×55×55\n17,472 params");
  });

  it("styles cross-tower edges apart from tower-local ones; every edge joins declared nodes", () => {
    for (const edge of dot.edges) {
      expect(dot.nodes.has(edge.from)).toBe(true);
      expect(dot.nodes.has(edge.to)).toBe(true);
    }
    const cross = dot.edges.filter((e) => e.attrs.class === "cross");
    const local = dot.edges.filter((e) => e.attrs.class === "local");
    expect(cross.map((e) => `${e.from} ${e.to}`)).toEqual([
      "pool2@t0 conv3@t1",
      "pool2@t1 conv3@t0",
      "pool5@t0 fc6@t1",
      "pool5@t1 fc6@t0",
      "drop6@t0 fc7@t1",
      "drop6@t1 fc7@t0",
      "drop7@t1 fc8@t0",
    ]);
    for (const e of cross) expect(e.attrs).toMatchObject({ style: "dashed", color: "#e03131" });
    for (const e of local) expect(e.attrs.style).toBeUndefined();
    expect(new Set(local.map((e) => e.attrs.color))).not.toContain("#e03131");
  });

  it("ranks each layer's tower parts together, as Figure 2 draws them side by side", () => {
    expect(text).toContain(`{ rank=same; "conv3@t0"; "conv3@t1"; }`);
    expect(dot.graphAttrs.newrank).toBe("true");
  });

  it("is deterministic", () => {
    expect(dotDiagram(graphOf(modelPath("alexnet.net")))).toBe(text);
  });

  it.skipIf(!hasGraphviz)("is accepted by Graphviz (when installed)", () => {
    const run = spawnSync("dot", ["-Tsvg"], { input: text, encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("<svg");
  });
});

describe("dot diagram of other networks", () => {
  it.each(allModels)("%s parses, with one node per box and one cluster per tower", (path) => {
    const graph = graphOf(path);
    const dot = parseDot(dotDiagram(graph));
    const boxes = graph.nodes.reduce(
      (n, node) => n + (node.layout.kind === "split" ? node.layout.towers : 1),
      0,
    );
    expect(dot.nodes.size).toBe(boxes + graph.inputs.length);
    expect(dot.subgraphs.size).toBe(graph.towers);
  });

  it("quotes odd names so that Graphviz reads them back unchanged", () => {
    const odd = `c"1\\n\\"x {y}; -> z`;
    const graph = { ...renameNode(graphOf(modelPath("alexnet-small.net")), "conv1", odd), name: `a "net"\\` };
    const text = dotDiagram(graph);
    const dot = parseDot(text);
    expect(dot.name).toBe(`a "net"\\\\`);
    expect(labelText(dot.nodes.get(`${odd.replace(/\\/g, "\\\\")}@t0`)!.label).split("\n")[0]).toBe(odd);
    if (hasGraphviz) expect(spawnSync("dot", ["-Tsvg"], { input: text }).status).toBe(0);
  });

  it("dotQuote escapes quotes, backslashes and line breaks", () => {
    expect(dotQuote(`a"b\\c\nd`)).toBe(`"a\\"b\\\\c\\nd"`);
  });
});
