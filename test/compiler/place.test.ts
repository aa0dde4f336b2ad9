// Placement of AlexNet over two devices at the paper's batch of 128, checked against a hand
// calculation from the layer table (`alexc info models/alexnet.net`), not against place.ts's code.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { main } from "../../compiler/cli.ts";
import { DiagnosticError } from "../../compiler/diagnostics.ts";
import { compileSource } from "../../compiler/frontend.ts";
import type { Graph } from "../../compiler/graph.ts";
import { placeAll, placeNetwork, type Placement } from "../../compiler/place.ts";

const alexnetFile = new URL("../../models/alexnet.net", import.meta.url).pathname;
const graphOf = (source: string): Graph => {
  const front = compileSource(source);
  if (!front.graph) throw new Error(front.diagnostics.map((d) => d.message).join("; "));
  return front.graph;
};
const alexnet = graphOf(readFileSync(alexnetFile, "utf8"));
const B = 128;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

// Per example, the whole layer (both towers). Output elements: conv1 96·55·55 = 290,400;
// pool1 96·27·27 = 69,984; conv2 256·27·27 = 186,624; pool2 256·13·13 = 43,264; conv3/conv4
// 384·13·13 = 64,896; conv5 256·13·13 = 43,264; pool5 256·6·6 = 9,216; fc6/fc7 4,096; fc8 1,000.
// MACs from the info table. Every layer but fc8 (on device 0) and the loss is split evenly.
const layers: { name: string; out: number; fwd: number; bwd: number }[] = [
  // conv: fwd 2·MACs + bias per output; bwd dgrad 2·MACs (none for conv1) + wgrad 2·MACs + bias
  { name: "conv1", out: 290_400, fwd: 2 * 105_415_200 + 290_400, bwd: 2 * 105_415_200 + 290_400 },
  { name: "relu1", out: 290_400, fwd: 290_400, bwd: 290_400 },
  { name: "norm1", out: 290_400, fwd: (5 + 4) * 290_400, bwd: (5 + 6) * 290_400 }, // LRN n = 5
  { name: "pool1", out: 69_984, fwd: 8 * 69_984, bwd: 69_984 }, // 3×3 window: 8 comparisons
  { name: "conv2", out: 186_624, fwd: 2 * 223_948_800 + 186_624, bwd: 4 * 223_948_800 + 186_624 },
  { name: "relu2", out: 186_624, fwd: 186_624, bwd: 186_624 },
  { name: "norm2", out: 186_624, fwd: 9 * 186_624, bwd: 11 * 186_624 },
  { name: "pool2", out: 43_264, fwd: 8 * 43_264, bwd: 43_264 },
  { name: "conv3", out: 64_896, fwd: 2 * 149_520_384 + 64_896, bwd: 4 * 149_520_384 + 64_896 },
  { name: "relu3", out: 64_896, fwd: 64_896, bwd: 64_896 },
  { name: "conv4", out: 64_896, fwd: 2 * 112_140_288 + 64_896, bwd: 4 * 112_140_288 + 64_896 },
  { name: "relu4", out: 64_896, fwd: 64_896, bwd: 64_896 },
  { name: "conv5", out: 43_264, fwd: 2 * 74_760_192 + 43_264, bwd: 4 * 74_760_192 + 43_264 },
  { name: "relu5", out: 43_264, fwd: 43_264, bwd: 43_264 },
  { name: "pool5", out: 9_216, fwd: 8 * 9_216, bwd: 9_216 },
  { name: "fc6", out: 4_096, fwd: 2 * 37_748_736 + 4_096, bwd: 4 * 37_748_736 + 4_096 },
  { name: "relu6", out: 4_096, fwd: 4_096, bwd: 4_096 },
  { name: "drop6", out: 4_096, fwd: 4_096, bwd: 4_096 },
  { name: "fc7", out: 4_096, fwd: 2 * 16_777_216 + 4_096, bwd: 4 * 16_777_216 + 4_096 },
  { name: "relu7", out: 4_096, fwd: 4_096, bwd: 4_096 },
  { name: "drop7", out: 4_096, fwd: 4_096, bwd: 4_096 },
];
// fc8 (device 0 only): 2·4,096,000 + 1,000; backward 4·4,096,000 + 1,000. Loss over 1,000 classes:
// 5·1,000 forward, 2·1,000 backward.
const fc8 = { fwd: 2 * 4_096_000 + 1_000, bwd: 4 * 4_096_000 + 1_000, out: 1_000 };
const loss = { fwd: 5 * 1_000, bwd: 2 * 1_000 };
const splitFwd = sum(layers.map((l) => l.fwd)); // per example, both halves
const splitBwd = sum(layers.map((l) => l.bwd));
const splitOut = sum(layers.map((l) => l.out));
const image = 3 * 224 * 224; // 150,528 values per example, loaded by every device that needs it

// Parameters: conv1 34,944 · conv2 307,456 · conv3 885,120 · conv4 663,936 · conv5 442,624 ·
// fc6 37,752,832 · fc7 16,781,312 (all split in halves) · fc8 4,097,000 (device 0) = 60,965,224.
const convParams = 34_944 + 307_456 + 885_120 + 663_936 + 442_624; // 2,334,080
const splitParams = convParams + 37_752_832 + 16_781_312; // 56,868,224
const fc8Params = 4_097_000;

// Cross-tower slices per example (f32 bytes = ×4): pool2 13·13·128 = 21,632; pool5 6·6·128 = 4,608;
// drop6 and drop7 2,048.
const pool2Bytes = B * 13 * 13 * 128 * 4; // 11,075,584
const pool5Bytes = B * 6 * 6 * 128 * 4; // 2,359,296
const fcBytes = B * 2048 * 4; // 1,048,576

const byPhase = (p: Placement, phase: string, from: number) =>
  sum(p.transfers.filter((t) => t.phase === phase && t.from === from).map((t) => t.bytes));

describe("placement of AlexNet at batch 128: model (the paper)", () => {
  const p = placeNetwork(alexnet, "model", { batch: B, devices: 2 });
  const [d0, d1] = p.devices;

  it("parameters: halves of conv1–fc7 on each device, all of fc8 on device 0", () => {
    expect(pool2Bytes).toBe(11_075_584);
    expect(d1.paramBytes).toBe((splitParams / 2) * 4); // 28,434,112 × 4 = 113,736,448
    expect(d0.paramBytes).toBe((splitParams / 2 + fc8Params) * 4); // 32,531,112 × 4 = 130,124,448
    expect(d0.paramBytes + d1.paramBytes).toBe(60_965_224 * 4);
  });

  it("transfers: pool2, pool5 and drop6 each way, drop7 to device 0; backward mirrors them", () => {
    const forward = p.transfers
      .filter((t) => t.phase === "forward")
      .map((t) => [t.tensor, t.from, t.to, t.bytes]);
    expect(forward).toEqual([
      ["pool2", 1, 0, pool2Bytes],
      ["pool2", 0, 1, pool2Bytes],
      ["pool5", 1, 0, pool5Bytes],
      ["pool5", 0, 1, pool5Bytes],
      ["drop6", 1, 0, fcBytes],
      ["drop6", 0, 1, fcBytes],
      ["drop7", 1, 0, fcBytes], // fc8 lives on device 0 only
    ]);
    const backward = p.transfers.filter((t) => t.phase === "backward");
    expect(backward.map((t) => [t.tensor, t.from, t.to, t.bytes])).toEqual(
      forward.map(([tensor, from, to, bytes]) => [`${tensor}.grad`, to, from, bytes]),
    );
    // 0 → 1: 11,075,584 + 2,359,296 + 1,048,576 = 14,483,456 forward; 1 → 0 adds drop7: 15,532,032.
    expect(byPhase(p, "forward", 0)).toBe(14_483_456);
    expect(byPhase(p, "forward", 1)).toBe(15_532_032);
    expect(d0.sent).toEqual({ forward: 14_483_456, backward: 15_532_032, gradientSum: 0, total: 30_015_488 });
    expect(d1.received).toEqual(d0.sent);
    expect(p.transfers.some((t) => t.phase === "gradient-sum")).toBe(false);
  });

  it("FLOPs per device: half of every split layer, fc8 and the loss on device 0", () => {
    // Received partial data gradients are added on arrival (the consumer ran on both devices):
    // pool2 128·21,632 + pool5 128·4,608 + drop6 128·2,048 = 3,620,864 adds per device; drop7's
    // gradient is a plain copy (device 1 has no fc8 partial).
    const adds = B * (21_632 + 4_608 + 2_048);
    expect(d1.flops.forward).toBe((B * splitFwd) / 2); // 92,622,034,944
    expect(d0.flops.forward).toBe((B * splitFwd) / 2 + B * (fc8.fwd + loss.fwd)); // 93,671,378,944
    expect(d1.flops.backward).toBe((B * splitBwd) / 2 + adds); // 171,338,489,856
    expect(d0.flops.backward).toBe((B * splitBwd) / 2 + B * (fc8.bwd + loss.bwd) + adds);
    // Update: 6 FLOPs per parameter held (momentum SGD as in the paper).
    expect(d1.flops.update).toBe(6 * (splitParams / 2)); // 170,604,672
    expect(d0.flops.update).toBe(6 * (splitParams / 2 + fc8Params)); // 195,186,672
    expect(d0.flops.total).toBe(267_302_591_472);
    expect(d1.flops.total).toBe(264_131_129_472);
  });

  it("activations: own halves, the whole image, and the slices received", () => {
    const received1 = pool2Bytes + pool5Bytes + fcBytes; // 14,483,456
    expect(d1.activationBytes).toBe(((B * splitOut) / 2 + B * image) * 4 + received1); // 584,155,136
    expect(d0.activationBytes).toBe(((B * splitOut) / 2 + B * (image + fc8.out)) * 4 + received1 + fcBytes);
  });
});

describe("placement of AlexNet at batch 128: data and hybrid", () => {
  it("data: the whole network on 64 examples each; all 60,965,224 gradients exchanged each way", () => {
    const p = placeNetwork(alexnet, "data", { batch: B, devices: 2 });
    const perDevice = B / 2;
    for (const d of p.devices) {
      expect(d.paramBytes).toBe(60_965_224 * 4);
      expect(d.flops.forward).toBe(perDevice * (splitFwd + fc8.fwd + loss.fwd)); // 93,146,706,944
      expect(d.flops.backward).toBe(perDevice * (splitBwd + fc8.bwd + loss.bwd)); // 172,383,636,992
      // 6 per parameter for the update + 1 to add the other device's gradient.
      expect(d.flops.update).toBe(7 * 60_965_224); // 426,756,568
      expect(d.activationBytes).toBe(perDevice * (splitOut + fc8.out + image) * 4); // 531,392,512
      expect(d.sent).toEqual({ forward: 0, backward: 0, gradientSum: 243_860_896, total: 243_860_896 });
    }
    expect(p.transfers.filter((t) => t.phase === "gradient-sum")).toHaveLength(2 * 16); // 16 tensors
    expect(p.totals.transferBytes).toBe(2 * 60_965_224 * 4); // 487,721,792
  });

  it("hybrid: conv layers on 64 examples each, pool5 gathered, fc6–fc8 as in the model split", () => {
    const p = placeNetwork(alexnet, "hybrid", { batch: B, devices: 2 });
    const [d0, d1] = p.devices;
    // The other half batch's whole pool5: 64 · 9,216 · 4 = 2,359,296 B each way (= the model split's
    // pool5 traffic); then drop6 each way and drop7 to device 0, as in `model`.
    const gather = (B / 2) * 9_216 * 4;
    expect(gather).toBe(pool5Bytes);
    expect(byPhase(p, "forward", 0)).toBe(gather + fcBytes); // 3,407,872
    expect(byPhase(p, "forward", 1)).toBe(gather + 2 * fcBytes); // 4,456,448
    expect(byPhase(p, "backward", 0)).toBe(gather + 2 * fcBytes);
    // Conv parameters are replicated and their gradients exchanged: 2,334,080 × 4 = 9,336,320 B each way.
    expect(byPhase(p, "gradient-sum", 0)).toBe(convParams * 4);
    expect(byPhase(p, "gradient-sum", 1)).toBe(9_336_320);
    expect(d1.paramBytes).toBe((convParams + (37_752_832 + 16_781_312) / 2) * 4); // 118,404,608
    expect(d0.paramBytes).toBe(d1.paramBytes + fc8Params * 4); // 134,792,608
    expect(d0.sent.total).toBe(17_200_640);
    expect(d1.sent.total).toBe(17_200_640);
  });

  it("all three do the same forward work in total; their totals side by side", () => {
    const { placements, skipped } = placeAll(alexnet, { batch: B });
    expect(skipped).toEqual([]);
    const totals = Object.fromEntries(placements.map((p) => [p.strategy, p.totals]));
    const forward = B * (splitFwd + fc8.fwd + loss.fwd); // 186,293,413,888
    for (const s of ["model", "data", "hybrid"]) expect(totals[s].flops.forward).toBe(forward);
    expect(totals.model).toMatchObject({ paramBytes: 243_860_896, transferBytes: 60_030_976 });
    expect(totals.data).toMatchObject({ paramBytes: 487_721_792, transferBytes: 487_721_792 });
    expect(totals.hybrid).toMatchObject({ paramBytes: 253_197_216, transferBytes: 34_401_280 });
    expect(totals.model.flops.total).toBe(531_433_720_944);
    expect(totals.data.flops.total).toBe(531_914_201_008);
    expect(totals.hybrid.flops.total).toBe(531_446_855_792);
  });
});

describe("placement edge cases", () => {
  it("an odd batch gives device 0 the extra example where the batch is split", () => {
    const p = placeNetwork(alexnet, "data", { batch: 3, devices: 2 });
    expect(p.nodes[0].examples).toEqual([2, 1]);
    expect(p.devices[0].flops.forward).toBe(2 * p.devices[1].flops.forward);
    const h = placeNetwork(alexnet, "hybrid", { batch: 3 });
    // Device 1 receives pool5 of device 0's two examples, device 0 that of device 1's one.
    expect(h.transfers.find((t) => t.tensor === "pool5" && t.to === 1)?.bytes).toBe(2 * 9_216 * 4);
    expect(h.transfers.find((t) => t.tensor === "pool5" && t.to === 0)?.bytes).toBe(9_216 * 4);
  });

  const oneTower = graphOf(`network one {
  input x: f32[3, 8, 8]
  classes: 4
  c = conv(x, filters: 4, kernel: 3, pad: 1, init: normal(0.1), bias: 0)
  r = relu(c)
  f = dense(r, units: classes, init: normal(0.1), bias: 0)
  loss = softmax_cross_entropy(f)
}`);

  it("model and hybrid need a two-tower network: AX3003; data works on any", () => {
    let error: unknown;
    try {
      placeNetwork(oneTower, "model", { batch: 4 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DiagnosticError);
    expect((error as DiagnosticError).diagnostics[0]).toMatchObject({ code: "AX3003" });
    expect((error as DiagnosticError).diagnostics[0].message).toContain("`one` has 1");
    const { placements, skipped } = placeAll(oneTower, { batch: 4 });
    expect(placements.map((p) => p.strategy)).toEqual(["data"]);
    expect(skipped.map((s) => s.strategy)).toEqual(["model", "hybrid"]);
    // Every trainable tensor is exchanged: conv 4·3·3·3 + 4, dense 4·256 + 4 = 1,140 values.
    const d = placements[0].devices[0];
    expect(d.sent.gradientSum).toBe((4 * 3 * 3 * 3 + 4 + 4 * 256 + 4) * 4);
  });

  it("rejects a batch below 1 and device counts other than 2", () => {
    expect(() => placeNetwork(alexnet, "data", { batch: 0 })).toThrow(RangeError);
    expect(() => placeNetwork(alexnet, "data", { batch: 8, devices: 3 as 2 })).toThrow(/two devices/);
  });
});

async function alexc(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (t) => void out.push(t), err: (t) => void err.push(t) });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("alexc info --placement", () => {
  it("prints one strategy per device, at the recipe's batch by default", async () => {
    const { code, out } = await alexc("info", alexnetFile, "--placement", "model");
    expect(code).toBe(0);
    expect(out).toContain("placement model — alexnet, batch 128, 2 devices");
    expect(out).toMatch(/parameter bytes\s+130,124,448\s+113,736,448\s+243,860,896/);
    expect(out).toMatch(/bytes sent\s+30,015,488\s+30,015,488\s+60,030,976/);
    expect(out).toMatch(/forward\s+pool2\s+1 → 0\s+11,075,584 B/);
    expect(out).toMatch(/backward\s+drop7\.grad\s+0 → 1\s+1,048,576 B/);
  });

  it("all: the three strategies side by side; --batch overrides; json is the records", async () => {
    const { code, out } = await alexc("info", alexnetFile, "--placement", "all");
    expect(code).toBe(0);
    expect(out).toMatch(/per training step\s+model\s+data\s+hybrid/);
    expect(out).toMatch(/bytes sent\s+device 0\s+30,015,488\s+243,860,896\s+17,200,640/);
    const json = JSON.parse(
      (await alexc("info", alexnetFile, "--placement", "data", "--batch", "64", "--format", "json")).out,
    );
    expect(json).toMatchObject({ strategy: "data", batch: 64 });
    expect(json.devices[0].flops.forward).toBe(32 * (splitFwd + fc8.fwd + loss.fwd));
    const data = (await alexc("info", alexnetFile, "--placement", "data")).out;
    expect(data).toMatch(/gradient-sum\s+16 parameter gradients\s+0 → 1\s+243,860,896 B/);
  });

  it("an unknown strategy is a usage error (exit 2)", async () => {
    const { code, err } = await alexc("info", alexnetFile, "--placement", "pipeline");
    expect(code).toBe(2);
    expect(err).toContain("--placement must be model, data, hybrid or all");
  });
});
