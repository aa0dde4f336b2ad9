// `node bench/conv-kernels.ts [--only SUBSTR] [--kind fwd,dgrad,wgrad]`: each convolution kernel
// (forward, data gradient, weight gradient) timed alone at the AlexNet / alexnet-fmnist shapes on this
// machine's WebGPU adapter, in GFLOP/s (median of several dispatches). Correctness lives in the tests
// (test/gpu/kernels.test.ts, gradients.test.ts); this only times. Not a test: wall-clock numbers vary.
import type { Padding2D } from "../compiler/graph.ts";
import { convKernel } from "../compiler/wgsl/conv.ts";
import { convDataGradKernel, convWeightGradKernel } from "../compiler/wgsl/backward/conv.ts";
import { closeDevices, openDevices } from "../runtime/devices.ts";
import { lcgUniform, median, readBuffer, submitTimed } from "./kernel-timer.ts";

interface Shape {
  name: string;
  batch: number;
  ci: number;
  hw: number;
  co: number;
  k: number;
  stride: number;
  pad: number;
  groups: number;
  /** conv1 of a network needs no data gradient. */
  first?: boolean;
}

const out = (s: Shape) => Math.floor((s.hw + 2 * s.pad - s.k) / s.stride) + 1;
const SHAPES: Shape[] = [
  {
    name: "fmnist conv1",
    batch: 128,
    ci: 1,
    hw: 28,
    co: 32,
    k: 5,
    stride: 1,
    pad: 2,
    groups: 1,
    first: true,
  },
  { name: "fmnist conv2", batch: 128, ci: 32, hw: 13, co: 64, k: 5, stride: 1, pad: 2, groups: 2 },
  { name: "fmnist conv3", batch: 128, ci: 64, hw: 6, co: 128, k: 3, stride: 1, pad: 1, groups: 1 },
  { name: "fmnist conv4", batch: 128, ci: 128, hw: 6, co: 128, k: 3, stride: 1, pad: 1, groups: 2 },
  { name: "fmnist conv5", batch: 128, ci: 128, hw: 6, co: 128, k: 3, stride: 1, pad: 1, groups: 2 },
  { name: "fmnist conv2 b1", batch: 1, ci: 32, hw: 13, co: 64, k: 5, stride: 1, pad: 2, groups: 2 },
  {
    name: "alexnet conv1",
    batch: 1,
    ci: 3,
    hw: 224,
    co: 96,
    k: 11,
    stride: 4,
    pad: 2,
    groups: 1,
    first: true,
  },
  { name: "alexnet conv2", batch: 1, ci: 96, hw: 27, co: 256, k: 5, stride: 1, pad: 2, groups: 2 },
  { name: "alexnet conv3", batch: 1, ci: 256, hw: 13, co: 384, k: 3, stride: 1, pad: 1, groups: 1 },
  { name: "alexnet conv4", batch: 1, ci: 384, hw: 13, co: 384, k: 3, stride: 1, pad: 1, groups: 2 },
  { name: "alexnet conv5", batch: 1, ci: 384, hw: 13, co: 256, k: 3, stride: 1, pad: 1, groups: 2 },
];

const args = process.argv.slice(2);
const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : undefined;
const kinds = args.includes("--kind")
  ? args[args.indexOf("--kind") + 1].split(",")
  : ["fwd", "dgrad", "wgrad"];
// Tile overrides for trying shapes by hand: CONV_OCB, CONV_PX, CONV_WG.
const env = (k: string) => (process.env[k] ? Number(process.env[k]) : undefined);
const tuning = Object.fromEntries(
  Object.entries({
    channelsPerInvocation: env("CONV_OCB"),
    pixelsPerInvocation: env("CONV_PX"),
    workgroupSize: env("CONV_WG"),
  }).filter(([, v]) => v !== undefined),
);

const [dev] = await openDevices({ count: 1, timestamps: false });
const device = dev.device;

interface Src {
  wgsl: string;
  entryPoint: string;
  bindings: { name: string; tensor: string; access: string }[];
  dispatch: [number, number, number];
  flops: number;
}

/** Runs `src` on `inputs` (tensor → data; outputs start as given or zero) `reps` times; returns ms and the outputs. */
async function run(src: Src, sizes: Record<string, number>, reps: number) {
  device.pushErrorScope("validation");
  const module = device.createShaderModule({ code: src.wgsl });
  const pipeline = await device.createComputePipelineAsync({
    layout: "auto",
    compute: { module, entryPoint: src.entryPoint },
  });
  const buffers = src.bindings.map((b, i) => {
    const n = sizes[b.tensor];
    const buf = device.createBuffer({
      size: Math.max(16, n * 4),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(
      buf,
      0,
      b.access === "read" ? lcgUniform(n, 17 + i * 31 + n) : new Float32Array(n),
    );
    return buf;
  });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const err = await device.popErrorScope();
  if (err) throw new Error(`${err.message}\n${src.wgsl}`);
  const times: number[] = [];
  const cpu: number[] = [];
  const step = { pipeline, bindGroup, dispatch: src.dispatch };
  for (let r = 0; r < reps + 1; r++) {
    const t = await submitTimed(device, [step]);
    // The first includes lavapipe's shader compile.
    if (r > 0) {
      times.push(t.wall);
      cpu.push(t.cpu);
    }
    if (r === 0 && reps > 1 && t.wall > 3000) reps = Math.min(reps, 2);
  }
  const outIdx = src.bindings.findIndex((b) => b.access === "read_write");
  const result = await readBuffer(device, buffers[outIdx], sizes[src.bindings[outIdx].tensor] * 4);
  buffers.forEach((b) => b.destroy());
  return { ms: median(times), cpuMs: median(cpu), result };
}

const id = { name: "kbench", layer: "bench", group: ["bench"] };
const rows: string[] = [];
try {
  for (const s of SHAPES) {
    if (only && !s.name.includes(only)) continue;
    const o = out(s);
    const pad: Padding2D = { top: s.pad, bottom: s.pad, left: s.pad, right: s.pad };
    const spec = {
      batch: s.batch,
      input: [s.ci, s.hw, s.hw],
      output: [s.co, o, o],
      kernel: [s.k, s.k] as const,
      stride: [s.stride, s.stride] as const,
      pad,
      groups: s.groups,
      outBase: 0,
      outCount: s.co,
      ...tuning,
    };
    const sizes: Record<string, number> = {
      x: s.batch * s.ci * s.hw * s.hw,
      w: (s.co * s.ci * s.k * s.k) / s.groups,
      b: s.co,
      y: s.batch * s.co * o * o,
    };
    const cases: [string, () => Src][] = [
      ["fwd", () => convKernel(id, { ...spec, tensors: { x: "x", w: "w", b: "b", y: "y" } })],
      [
        "dgrad",
        () => convDataGradKernel(id, { ...spec, accumulate: false, tensors: { dy: "y", w: "w", dx: "x" } }),
      ],
      ["wgrad", () => convWeightGradKernel(id, { ...spec, tensors: { x: "x", dy: "y", dw: "w" } })],
    ];
    for (const [kind, make] of cases) {
      if (!kinds.includes(kind)) continue;
      if (kind === "dgrad" && s.first) continue;
      const reps = 5;
      const src = make();
      const now = await run(src, sizes, reps);
      let line = `${s.name.padEnd(16)} ${kind.padEnd(6)} ${now.ms.toFixed(2).padStart(9)} ms ${(src.flops / now.ms / 1e6).toFixed(2).padStart(7)} GFLOP/s  cpu ${now.cpuMs.toFixed(1).padStart(8)} ms`;
      console.log(line);
      rows.push(line);
    }
  }
} finally {
  closeDevices([dev]);
}
