// The tower slicing of the paper's network and its placement over two devices: per-tower shapes,
// parameter slices that tile the source parameters, transfers at exactly the paper's cross-tower
// edges (and their gradients), and the bytes they move.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileSource } from "../../compiler/frontend.ts";
import { type Graph, elementCount } from "../../compiler/graph.ts";
import { lowerPlaced, lowerTrainingPlaced, transferBytes } from "../../compiler/lower-placed.ts";
import type { CompiledPlan, ScheduleStep, TransferStep } from "../../compiler/plan.ts";
import { planSchema } from "../../compiler/plan.ts";
import { dropoutSources, sliceTowers } from "../../compiler/towers.ts";

function model(name: string): Graph {
  const r = compileSource(readFileSync(new URL(`../../models/${name}`, import.meta.url), "utf8"));
  if (!r.graph) throw new Error(r.diagnostics.map((d) => d.message).join("; "));
  return r.graph;
}

const alexnet = model("alexnet.net");
const towers = sliceTowers(alexnet);
const opts = { batch: 1, maxBindingBytes: 1 << 27, source: "alexnet.net", compilerVersion: "alexc test" };
const train: CompiledPlan = lowerTrainingPlaced(alexnet, { ...opts, momentum: 0.9, weightDecay: 5e-4 });
const forward: CompiledPlan = lowerPlaced(alexnet, opts);
const transfers = (steps: ScheduleStep[]) => steps.filter((s): s is TransferStep => s.kind === "transfer");

/** The source layer whose value (or whose value's gradient) a transferred tensor holds. */
function sourceOf(tensor: string): { layer: string; gradient: boolean } {
  const gradient = tensor.startsWith("grad:");
  const rest = tensor.replace(/^(grad|eval):/, "");
  // `grad:X` or `grad:X@consumer`: the longest tower-graph node that prefixes it is X
  const value = Object.keys(towers.nodes)
    .filter((n) => rest === n || rest.startsWith(`${n}@`))
    .sort((a, b) => b.length - a.length)[0];
  return { layer: towers.nodes[value].layer, gradient };
}

/** Source layers of the tower-graph nodes that read the peer of a forward transfer (through a gather). */
function consumersOf(compiled: CompiledPlan, peer: string): string[] {
  const readers = compiled.plan.kernels.filter((k) => k.bindings.some((b) => b.tensor === peer));
  const gathers = new Set(readers.map((k) => k.layer));
  const layers = towers.graph.nodes
    .filter((n) => n.inputs.some((i) => gathers.has(i)))
    .map((n) => towers.nodes[n.name].layer);
  return [...new Set(layers)];
}

describe("tower slicing of alexnet.net", () => {
  it("splits every split layer into one node per tower with its share of the channels", () => {
    const node = (name: string) => towers.graph.nodes.find((n) => n.name === name)!;
    expect(towers.devices).toBe(2);
    expect(node("conv1@t0").shape).toEqual([48, 55, 55]);
    expect(node("conv2@t1").shape).toEqual([128, 27, 27]);
    expect(node("conv3@t0").shape).toEqual([192, 13, 13]);
    expect(node("pool5@t1").shape).toEqual([128, 6, 6]);
    expect(node("fc6@t0").shape).toEqual([2048]);
    expect(node("fc8").shape).toEqual([1000]);
    // tower-local layers read their own tower's slice; cross / on(t) layers a gather on their device
    expect(node("conv1@t1").inputs).toEqual(["image"]);
    expect(node("conv2@t1").inputs).toEqual(["pool1@t1"]);
    expect(node("conv3@t1").inputs).toEqual(["pool2@gather@t1"]);
    expect(node("pool2@gather@t1")).toMatchObject({ inputs: ["pool2@t0", "pool2@t1"], shape: [256, 13, 13] });
    expect(node("fc6@t0").inputs).toEqual(["pool5@gather@t0"]);
    expect(node("fc8").inputs).toEqual(["drop7@gather@t0"]);
    expect(node("loss").inputs).toEqual(["fc8"]);
    expect(towers.nodes["pool5@gather@t1"].device).toBe(1);
    expect(towers.nodes.fc8.device).toBe(0);
    expect(towers.nodes.loss.device).toBe(0);
    // every conv / dense is an ordinary groups = 1 layer now; LRN normalises within its slice
    for (const n of towers.graph.nodes) {
      if (n.attrs.op === "conv" || n.attrs.op === "dense" || n.attrs.op === "lrn")
        expect(n.attrs.groups).toBe(1);
      expect(towers.nodes[n.name].device).toBe(n.name.endsWith("@t1") ? 1 : 0);
    }
    // the work is split, not duplicated
    const macs = (g: Graph) => g.nodes.reduce((a, n) => a + n.macs, 0);
    expect(macs(towers.graph)).toBe(macs(alexnet));
  });

  it("slices parameters by rows that tile the source parameters in PyTorch layout", () => {
    const source = new Map(alexnet.params.map((p) => [p.name, p]));
    const covered = new Map<string, number[]>();
    for (const s of Object.values(towers.params)) {
      const p = source.get(s.param)!;
      expect(s.rowElements).toBe(elementCount(p.shape.slice(1)));
      const rows = covered.get(s.param) ?? [];
      for (let r = s.rowOffset; r < s.rowOffset + s.rows; r++) rows.push(r);
      covered.set(s.param, rows);
    }
    for (const p of alexnet.params) {
      if (p.layer === "fc8") continue; // whole on device 0
      expect(
        covered.get(p.name)!.sort((a, b) => a - b),
        p.name,
      ).toEqual([...Array(p.shape[0]).keys()]);
    }
    expect(towers.params["conv2@t1.weight"]).toMatchObject({
      param: "conv2.weight",
      rowOffset: 128,
      rows: 128,
    });
  });
});

describe("alexnet.net placed over two devices", () => {
  it("hashes each tower's dropout slice as its source layer's channels / units", () => {
    const sources = dropoutSources(towers);
    for (const d of ["drop6", "drop7"]) {
      const layer = alexnet.nodes.findIndex((n) => n.name === d);
      const units = alexnet.nodes[layer].shape[0];
      expect(sources[`${d}@t0`]).toEqual({ layer, perExample: units, offset: 0, stride: 1 });
      expect(sources[`${d}@t1`]).toEqual({ layer, perExample: units, offset: units / 2, stride: 1 });
      const dropout = train.plan.training!.dropout.filter((x) => x.node.startsWith(`${d}@`));
      expect(dropout.map((x) => [x.layer, x.offset])).toEqual([
        [layer, 0],
        [layer, units / 2],
      ]);
    }
  });

  it("is a valid plan whose kernels bind only tensors of their own device", () => {
    for (const { plan } of [train, forward]) {
      expect(() => planSchema.parse(plan)).not.toThrow();
      expect(plan.devices.map((d) => d.index)).toEqual([0, 1]);
      const tensors = new Map(plan.tensors.map((t) => [t.name, t]));
      for (const k of plan.kernels)
        for (const b of k.bindings)
          expect(tensors.get(b.tensor)!.device, `${k.name} ${b.tensor}`).toBe(k.device);
      expect(new Set(plan.kernels.map((k) => k.device))).toEqual(new Set([0, 1]));
    }
    // the parameters are the source graph's, whole
    expect(train.plan.params.map((p) => p.name)).toEqual(alexnet.params.map((p) => p.name));
  });

  it("maps every parameter, gradient and velocity back to its source tensor", () => {
    const plan = train.plan;
    for (const p of alexnet.params) {
      for (const base of [p.name, `grad:${p.name}`, `velocity:${p.name}`]) {
        const whole = plan.tensors.find((t) => t.name === base);
        const parts = plan.tensors.filter((t) => t.partOf?.tensor === base);
        if (p.layer === "fc8") {
          expect(whole?.device, base).toBe(0);
          continue;
        }
        // the parts tile [0, n) of the source tensor: contiguous, no gap, no overlap
        const n = elementCount(p.shape);
        const runs = parts
          .map((t) => [t.partOf!.offset, t.partOf!.offset + elementCount(t.shape)])
          .sort((x, y) => x[0] - y[0]);
        expect(runs[0][0], base).toBe(0);
        for (let i = 1; i < runs.length; i++) expect(runs[i][0], base).toBe(runs[i - 1][1]);
        expect(runs[runs.length - 1][1], base).toBe(n);
        expect(parts.map((t) => t.device).sort(), base).toEqual([0, 1]);
      }
    }
    expect(train.plan.training!.gradients["conv3.weight"]).toBe("grad:conv3.weight");
  });

  it("transfers only at the paper's cross-tower edges, and their gradients", () => {
    const steps = transfers(train.plan.schedule);
    const fwd = steps.filter((s) => !sourceOf(s.tensor).gradient);
    const bwd = steps.filter((s) => sourceOf(s.tensor).gradient);
    const edges = fwd.map((s) => `${sourceOf(s.tensor).layer}→${consumersOf(train, s.peer).join(",")}`);
    expect([...new Set(edges)].sort()).toEqual(["drop6→fc7", "drop7→fc8", "pool2→conv3", "pool5→fc6"]);
    // both directions, except drop7 → fc8, which runs on device 0 only
    expect(fwd.map((s) => `${sourceOf(s.tensor).layer}:${s.from}→${s.to}`)).toEqual([
      "pool2:1→0",
      "pool2:0→1",
      "pool5:1→0",
      "pool5:0→1",
      "drop6:1→0",
      "drop6:0→1",
      "drop7:1→0",
    ]);
    // the backward pass sends each received slice's gradient back to its owner
    expect(bwd.map((s) => `${sourceOf(s.tensor).layer}:${s.from}→${s.to}`)).toEqual([
      "drop7:0→1",
      "drop6:0→1",
      "drop6:1→0",
      "pool5:0→1",
      "pool5:1→0",
      "pool2:0→1",
      "pool2:1→0",
    ]);
    // inference transfers the same forward edges (dropout is a view there: relu6 / relu7 move)
    const evalEdges = transfers(forward.plan.schedule).map((s) => sourceOf(s.tensor).layer);
    expect(evalEdges).toEqual(["pool2", "pool2", "pool5", "pool5", "relu6", "relu6", "relu7"]);
  });

  it("moves the paper's slices: 234,496 bytes forward and as many backward at batch 1", () => {
    const f32 = 4;
    const pool2 = 128 * 13 * 13 * f32; // one tower's pool2: 86,528 bytes
    const pool5 = 128 * 6 * 6 * f32; // 18,432
    const fc = 2048 * f32; // drop6 / drop7 halves: 8,192
    const perPass = 2 * pool2 + 2 * pool5 + 2 * fc + fc;
    expect(perPass).toBe(234_496);
    expect(transferBytes(forward.plan.schedule)).toBe(perPass);
    expect(transferBytes(train.plan.training!.evalSchedule)).toBe(perPass);
    expect(transferBytes(train.plan.schedule)).toBe(2 * perPass);
    // it scales with the batch
    const batch4 = lowerPlaced(alexnet, { ...opts, batch: 4 });
    expect(transferBytes(batch4.plan.schedule)).toBe(4 * perPass);
  });
});
