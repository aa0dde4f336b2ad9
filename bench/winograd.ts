// `npm run bench:winograd -- [--batch 1,8] [--reps 7] [--only conv4] [--net alexnet|fmnist]`: the
// 3×3 convolutions conv3, conv4, conv5 of AlexNet (13×13 maps) or of alexnet-fmnist (6×6) timed with
// the direct kernel (compiler/wgsl/conv.ts, with the autotuned tiles cached for this adapter when
// there are some, else the template's own) and with Winograd F(2×2, 3×3) (compiler/wgsl/winograd.ts:
// input transform, 16 GEMMs and output transform, submitted together as a step would; the weight
// transform reported apart, since it runs once per weight upload). Each figure is the median of
// --reps submits timed to onSubmittedWorkDone, the two algorithms interleaved (ABBA) so that
// background load hits both alike; the process CPU time of the same submits is shown too (lavapipe's
// threads run in-process), being less sensitive to other processes than wall time. GFLOP/s are
// effective: the direct convolution's FLOPs / time, for both. Also prints the largest difference
// between the two outputs (relative to the largest |y|).
// Not a test: wall-clock numbers vary. Correctness lives in test/gpu/winograd.test.ts.
import { loadavg } from "node:os";
import type { PlanKernel } from "../compiler/plan.ts";
import { tilesFor } from "../compiler/tuning.ts";
import type { TrainKernelSource } from "../compiler/wgsl/backward/util.ts";
import { type ConvSpec, convKernel } from "../compiler/wgsl/conv.ts";
import { winogradPlan } from "../compiler/wgsl/winograd-plan.ts";
import { adapterKey, loadTuning } from "../runtime/autotune.ts";
import { closeDevices, openDevices } from "../runtime/devices.ts";
import { buildKernelStep, type KernelStep } from "../runtime/pipeline.ts";
import { lcgUniform, median, readBuffer, submitTimed } from "./kernel-timer.ts";

const args = process.argv.slice(2);
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const batches = (flag("--batch") ?? "1,8").split(",").map(Number);
const reps = Math.max(5, Number(flag("--reps") ?? 7));
const only = flag("--only");
// Winograd GEMM tile overrides for trying shapes by hand: WINO_OCB, WINO_TPI, WINO_WG.
const env = (k: string) => (process.env[k] ? Number(process.env[k]) : undefined);
const winoTiles = Object.fromEntries(
  Object.entries({
    channelsPerInvocation: env("WINO_OCB"),
    tilesPerInvocation: env("WINO_TPI"),
    workgroupSize: env("WINO_WG"),
  }).filter(([, v]) => v !== undefined),
);

const NETS = {
  alexnet: {
    hw: 13,
    layers: [
      { name: "conv3", ci: 256, co: 384, groups: 1 },
      { name: "conv4", ci: 384, co: 384, groups: 2 },
      { name: "conv5", ci: 384, co: 256, groups: 2 },
    ],
  },
  fmnist: {
    hw: 6,
    layers: [
      { name: "conv3", ci: 64, co: 128, groups: 1 },
      { name: "conv4", ci: 128, co: 128, groups: 2 },
      { name: "conv5", ci: 128, co: 128, groups: 2 },
    ],
  },
};
const net = flag("--net") ?? "alexnet";
if (!(net in NETS)) throw new Error(`--net ${net}: expected one of ${Object.keys(NETS).join(", ")}`);
const { hw: HW, layers: LAYERS } = NETS[net as keyof typeof NETS];

const [dev] = await openDevices({ count: 1, timestamps: false });
const { device } = dev;
const adapter = adapterKey(dev);
const table = loadTuning(adapter);

const buffers = new Map<string, GPUBuffer>();
function buffer(name: string, bytes: number, data?: Float32Array): GPUBuffer {
  let b = buffers.get(name);
  if (!b) {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    b = device.createBuffer({ label: name, size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
    if (data) device.queue.writeBuffer(b, 0, data);
    buffers.set(name, b);
  }
  return b;
}
function releaseBuffers() {
  for (const b of buffers.values()) b.destroy();
  buffers.clear();
}

async function step(name: string, src: TrainKernelSource): Promise<KernelStep> {
  const kernel: PlanKernel = {
    name,
    file: `kernels/${name}.wgsl`,
    layer: name,
    op: src.op,
    group: [name],
    device: dev.index,
    entryPoint: src.entryPoint,
    bindings: src.bindings.map((b, binding) => ({ binding, tensor: b.tensor, access: b.access })),
    workgroupSize: src.workgroupSize,
    dispatch: src.dispatch,
    flops: src.flops,
  };
  return buildKernelStep(dev, kernel, src.wgsl, (t) => {
    const b = buffers.get(t);
    return b && { buffer: b };
  });
}

const run = (steps: readonly KernelStep[]) =>
  submitTimed(
    device,
    steps.map((s) => ({ ...s, dispatch: s.kernel.dispatch })),
  );
const readBack = (name: string) => readBuffer(device, buffers.get(name)!);

interface Row {
  layer: string;
  batch: number;
  tiles: string;
  flops: number;
  direct: { wall: number; cpu: number };
  wino: { wall: number; cpu: number };
  stages: Record<string, number>;
  weights: number;
  diff: number;
}

/** Median ms per Winograd stage, summed over the passes of a plan that has several. */
function stageTotals(steps: KernelStep[], ms: number[][]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [i, s] of steps.entries()) {
    const stage = s.kernel.op.split("+")[0].split(".").pop()!;
    out[stage] = (out[stage] ?? 0) + median(ms[i]);
  }
  return out;
}

const rows: Row[] = [];
const load0 = loadavg()[0];
try {
  for (const batch of batches) {
    for (const l of LAYERS) {
      if (only && !l.name.includes(only)) continue;
      const pad = { top: 1, bottom: 1, left: 1, right: 1 };
      const shape: Omit<ConvSpec, "tensors"> = {
        batch,
        input: [l.ci, HW, HW],
        output: [l.co, HW, HW],
        kernel: [3, 3],
        stride: [1, 1],
        pad,
        groups: l.groups,
        outBase: 0,
        outCount: l.co,
      };
      const tuned = tilesFor(table, "conv", shape);
      const xn = batch * l.ci * HW * HW;
      const yn = batch * l.co * HW * HW;
      buffer("x", xn * 4, lcgUniform(xn, 1));
      buffer("w", (l.co * l.ci * 9 * 4) / l.groups, lcgUniform((l.co * l.ci * 9) / l.groups, 2));
      buffer("b", l.co * 4, lcgUniform(l.co, 3));
      buffer("y_direct", yn * 4);
      buffer("y_wino", yn * 4);
      const tensors = { x: "x", w: "w", b: "b" };
      const direct = await step(
        "direct",
        convKernel(
          { name: "direct", layer: l.name, group: [l.name] },
          { ...shape, ...tuned, activation: "relu", tensors: { ...tensors, y: "y_direct" } },
        ),
      );
      const plan = winogradPlan(
        { name: "wino", layer: l.name, group: [l.name] },
        {
          ...shape,
          ...winoTiles,
          activation: "relu",
          tensors: { ...tensors, y: "y_wino", u: "u", v: "v", m: "m" },
        },
        { maxBindingBytes: dev.maxBindingBytes },
      );
      for (const s of plan.scratch) buffer(s.name, s.bytes);
      const built = await Promise.all(plan.kernels.map((k) => step(k.id.name, k.source)));
      const weights = built.filter((_, i) => plan.kernels[i].once);
      const perStep = built.filter((_, i) => !plan.kernels[i].once);
      // Warm-up: lavapipe compiles a pipeline's machine code at its first dispatch.
      await run(weights);
      await run([direct]);
      await run(perStep);
      for (const s of perStep) await run([s]);
      const d: { wall: number; cpu: number }[] = [];
      const w: { wall: number; cpu: number }[] = [];
      const stageMs = perStep.map(() => [] as number[]);
      const weightMs: number[] = [];
      for (let r = 0; r < reps; r++) {
        if (r % 2 === 0) {
          d.push(await run([direct]));
          w.push(await run(perStep));
        } else {
          w.push(await run(perStep));
          d.push(await run([direct]));
        }
        for (const [i, s] of perStep.entries()) stageMs[i].push((await run([s])).wall);
        weightMs.push((await run(weights)).wall);
      }
      const [yd, yw] = [await readBack("y_direct"), await readBack("y_wino")];
      let diff = 0;
      let scale = 0;
      for (let i = 0; i < yn; i++) {
        diff = Math.max(diff, Math.abs(yd[i] - yw[i]));
        scale = Math.max(scale, Math.abs(yd[i]));
      }
      const med = (xs: { wall: number; cpu: number }[]) => ({
        wall: median(xs.map((x) => x.wall)),
        cpu: median(xs.map((x) => x.cpu)),
      });
      rows.push({
        layer: l.name,
        batch,
        tiles: Object.keys(tuned).length ? JSON.stringify(tuned) : "defaults",
        flops: plan.directFlops,
        direct: med(d),
        wino: med(w),
        stages: stageTotals(perStep, stageMs),
        weights: median(weightMs),
        diff: diff / scale,
      });
      const r = rows[rows.length - 1];
      console.error(
        `${l.name} b${batch}: direct ${r.direct.wall.toFixed(1)} ms, winograd ${r.wino.wall.toFixed(1)} ms`,
      );
      releaseBuffers();
    }
  }
} finally {
  releaseBuffers();
  closeDevices([dev]);
}

const gf = (flops: number, ms: number) => (flops / (ms * 1e6)).toFixed(2);
const WIDTHS = [7, 6, 11, 9, 9, 10, 9, 9, 10];
/** One table line: the first cell left-aligned, the numeric ones right-aligned, then free text. */
const line = (cells: (string | number)[], rest = "") =>
  cells.map((c, i) => (i === 0 ? String(c).padEnd(WIDTHS[0]) : String(c).padStart(WIDTHS[i]))).join("") +
  rest;
/** Direct and Winograd columns of a row or a total: ms, effective GFLOP/s, CPU ms, speed-up. */
const figures = (
  flops: number,
  direct: { wall: number; cpu: number },
  wino: { wall: number; cpu: number },
) => [
  direct.wall.toFixed(1),
  gf(flops, direct.wall),
  direct.cpu.toFixed(1),
  wino.wall.toFixed(1),
  gf(flops, wino.wall),
  wino.cpu.toFixed(1),
  `${(direct.wall / wino.wall).toFixed(2)}x`,
];
console.log(`adapter: ${adapter}`);
console.log(
  `tuning cache: ${table ? "found (direct kernels use its tiles)" : "none (direct kernels use the template's tiles)"}`,
);
console.log(
  `median of ${reps} interleaved submits; load average ${load0.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at end`,
);
console.log(
  line(
    ["layer", "batch", "direct ms", "GFLOP/s", "cpu ms", "wino ms", "GFLOP/s", "cpu ms", "speed-up"],
    "  winograd stages ms: input / gemm / output; weights (once)   max|Δy|/max|y|  direct tiles",
  ),
);
for (const r of rows) {
  const st = r.stages;
  const stages = `${st.input.toFixed(1)} / ${st.gemm.toFixed(1)} / ${st.output.toFixed(1)}; ${r.weights.toFixed(1)}`;
  console.log(
    line(
      [r.layer, r.batch, ...figures(r.flops, r.direct, r.wino)],
      `  ${stages.padEnd(58)}${r.diff.toExponential(1).padStart(14)}  ${r.tiles}`,
    ),
  );
}
for (const batch of batches) {
  const rs = rows.filter((r) => r.batch === batch);
  if (rs.length < 2) continue;
  const sum = (f: (r: Row) => number) => rs.reduce((a, r) => a + f(r), 0);
  const total = (k: "direct" | "wino") => ({ wall: sum((r) => r[k].wall), cpu: sum((r) => r[k].cpu) });
  console.log(
    line([
      "total",
      batch,
      ...figures(
        sum((r) => r.flops),
        total("direct"),
        total("wino"),
      ),
    ]),
  );
}
