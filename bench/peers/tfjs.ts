// TF.js on WebGPU (@tensorflow/tfjs-backend-webgpu on Dawn through navigator.gpu: the same adapter
// as alexc) as a peer of `npm run bench`. TF.js cannot read ONNX, so the network is built here from
// alexc's checked graph and the same weights, the way a TF.js user would write it:
//  - activations NHWC (TF.js's conv layout); the NCHW input is transposed once, outside the timing;
//  - grouped convolutions (conv2, conv4, conv5) emulated with split / conv2d / concat, the filters
//    pre-split per group and stored HWIO as variables;
//  - LRN per tower group with α' = α (the paper's sum) or α/n (the "mean" convention);
//  - dense weights stored [in, out]; fc6's input columns permuted once from alexc's CHW flatten order
//    to NHWC's, so the map is flattened without a transpose;
//  - training: tf.variableGrads of the batch-mean softmax cross-entropy, then the paper's update
//    v ← m·v − wd·ε·w − ε·g, w ← w + v on every variable (biases included), as alexc does.
// Checks before timing: the inference logits against onnxruntime-node's; for training rows also one
// step's gradients (dropout off) against TF.js's own CPU backend. Settings: TF.js's default matmul
// program choice first; where a check fails (its split-K matmul program, chosen for a product with
// few output tiles and K ≥ 2000 such as a dense layer's data gradient at batch 1, gives wrong numbers
// on lavapipe, measured), again with WEBGPU_MATMUL_PROGRAM_TYPE = 3 (MatMulPackedProgram). The table
// reports which setting was needed.
import type { Graph } from "../../compiler/graph.ts";
import { check, installNavigatorGpu, loadProblem, peerMain, readReference, timeRuns } from "./common.ts";
import type { PeerResult, Problem } from "./common.ts";

await installNavigatorGpu(); // before the backend is imported: it looks for navigator.gpu
const tf = await import("@tensorflow/tfjs");
await import("@tensorflow/tfjs-backend-webgpu");

type T4 = import("@tensorflow/tfjs").Tensor4D;
type T2 = import("@tensorflow/tfjs").Tensor2D;
type Tensor = import("@tensorflow/tfjs").Tensor;
type Pad = [[number, number], [number, number], [number, number], [number, number]];

interface TfModel {
  vars: import("@tensorflow/tfjs").Variable[];
  forward(x: T4, training: boolean): T2;
}

/** The network as TF.js ops over variables holding `params` (see the file comment for the mapping). */
function buildModel(graph: Graph, params: ReadonlyMap<string, Float32Array>): TfModel {
  const vars: TfModel["vars"] = [];
  const variable = (t: Tensor, name: string) => {
    const v = tf.variable(t, true, name.replace(/[^A-Za-z0-9_]/g, "_"));
    vars.push(v);
    return v;
  };
  const shapes = new Map<string, number[]>([[graph.inputs[0].name, graph.inputs[0].shape]]);
  for (const n of graph.nodes) shapes.set(n.name, n.shape);
  /** The map a (flattened) value was made from, [C, H, W], to permute dense weights to NHWC order. */
  const origin = new Map<string, number[]>();
  const layers: ((values: Map<string, Tensor>, training: boolean) => void)[] = [];
  for (const node of graph.nodes) {
    const a = node.attrs;
    const p = (s: string) => params.get(`${node.name}.${s}`)!;
    const inShape = shapes.get(node.inputs[0])!;
    const inOrigin = inShape.length === 3 ? inShape : origin.get(node.inputs[0]);
    const set = (f: (x: Tensor, training: boolean) => Tensor) =>
      layers.push((values, training) => values.set(node.name, f(values.get(node.inputs[0])!, training)));
    const explicit = (q: { top: number; bottom: number; left: number; right: number }): Pad => [
      [0, 0],
      [q.top, q.bottom],
      [q.left, q.right],
      [0, 0],
    ];
    const split = <T extends Tensor>(t: T, groups: number, axis: number): T[] =>
      groups === 1 ? [t] : (tf.split(t, groups, axis) as T[]);
    switch (a.op) {
      case "conv": {
        const [kh, kw] = a.kernel;
        const cin = inShape[0] / a.groups;
        const oihw = tf.tensor4d(p("weight"), [a.filters, cin, kh, kw]);
        const ws = split(tf.transpose(oihw, [2, 3, 1, 0]) as T4, a.groups, 3).map((w, g) =>
          variable(w, `${node.name}_w${g}`),
        );
        oihw.dispose();
        const bias = a.bias ? variable(tf.tensor1d(p("bias")), `${node.name}_b`) : undefined;
        const pad = explicit(a.pad);
        const zeroPad = pad.flat().every((v) => v === 0);
        set((x) => {
          const parts = split(x as T4, a.groups, 3).map((xi, g) =>
            tf.conv2d(xi, ws[g] as unknown as T4, a.stride, zeroPad ? "valid" : pad),
          );
          const y = parts.length === 1 ? parts[0] : tf.concat(parts, 3);
          return bias ? tf.add(y, bias) : y;
        });
        break;
      }
      case "dense": {
        const features = inShape.reduce((s, v) => s * v, 1);
        let w = p("weight");
        const nhwcFlatten = inOrigin !== undefined && a.groups === 1;
        if (nhwcFlatten) {
          const [c, h, wd] = inOrigin;
          const permuted = new Float32Array(w.length);
          for (let u = 0; u < a.units; u++)
            for (let ci = 0; ci < c; ci++)
              for (let y = 0; y < h * wd; y++)
                permuted[u * features + y * c + ci] = w[u * features + ci * h * wd + y];
          w = permuted;
        }
        const rows = tf.tensor2d(w, [a.units, features / a.groups]);
        const ws = split(rows, a.groups, 0).map((wg, g) => variable(tf.transpose(wg), `${node.name}_w${g}`));
        rows.dispose();
        const bias = a.bias ? variable(tf.tensor1d(p("bias")), `${node.name}_b`) : undefined;
        set((x) => {
          const batch = x.shape[0];
          const flat = (
            x.rank === 4 && !nhwcFlatten
              ? tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [batch, -1])
              : tf.reshape(x, [batch, -1])
          ) as T2;
          const parts = split(flat, a.groups, 1).map((xi, g) => tf.matMul(xi, ws[g] as unknown as T2));
          const y = parts.length === 1 ? parts[0] : tf.concat(parts, 1);
          return bias ? tf.add(y, bias) : y;
        });
        break;
      }
      case "relu":
      case "tanh":
      case "sigmoid": {
        const op = a.op;
        set((x) => tf[op](x));
        if (inOrigin) origin.set(node.name, inOrigin);
        break;
      }
      case "lrn": {
        const alpha = a.alphaOf === "mean" ? a.alpha / a.size : a.alpha;
        set((x) => {
          const parts = split(x as T4, a.groups, 3).map((t) =>
            tf.localResponseNormalization(t, Math.floor(a.size / 2), a.k, alpha, a.beta),
          );
          return parts.length === 1 ? parts[0] : tf.concat(parts, 3);
        });
        break;
      }
      case "maxpool": {
        const pad = explicit(a.pad);
        const padded = pad.flat().some((v) => v !== 0);
        set((x) =>
          tf.maxPool(padded ? tf.pad(x as T4, pad, -Infinity) : (x as T4), a.window, a.stride, "valid"),
        );
        break;
      }
      case "dropout": {
        set((x, training) => (training ? tf.dropout(x, a.p) : x));
        if (inOrigin) origin.set(node.name, inOrigin);
        break;
      }
      case "flatten":
        set((x) => x); // dense flattens (in NHWC order, its weights permuted to match)
        origin.set(node.name, inShape);
        break;
      case "softmax_cross_entropy":
        break;
      default:
        throw new Error(`the TF.js peer does not build \`${a.op}\` layers`);
    }
  }
  return {
    vars,
    forward: (x, training) => {
      const values = new Map<string, Tensor>([[graph.inputs[0].name, x]]);
      for (const layer of layers) layer(values, training);
      return values.get(graph.logits) as T2;
    },
  };
}

/** Gradients pass within 1 % of each variable's largest reference magnitude (sums over thousands of terms). */
const GRADIENT_TOLERANCE = 1e-2;

function gradientCheck(got: Map<string, Float32Array>, ref: Map<string, Float32Array>) {
  let worst = { name: "", relError: 0 };
  for (const [name, r] of ref) {
    const c = check(got.get(name) ?? new Float32Array(0), r);
    if (!(c.relError <= worst.relError)) worst = { name, relError: c.relError };
  }
  const relError = worst.relError;
  return {
    worst: worst.name,
    check: { relError, tolerance: GRADIENT_TOLERANCE, ok: relError <= GRADIENT_TOLERANCE },
  };
}

/** The model, its input and one-hot labels on the current backend, and what the peer does with them. */
function setUp(p: Problem) {
  const model = buildModel(p.graph, p.params);
  const [xs, oneHot] = tf.tidy(() => [
    tf.transpose(tf.tensor4d(p.images, p.inputDims as [number, number, number, number]), [0, 2, 3, 1]) as T4,
    tf.oneHot(tf.tensor1d(p.labels, "int32"), p.graph.classes).toFloat(),
  ]);
  const lossOf = (training: boolean) => () =>
    tf.losses.softmaxCrossEntropy(
      oneHot,
      model.forward(xs as T4, training),
    ) as import("@tensorflow/tfjs").Scalar;
  return {
    model,
    lossOf,
    infer: async () => {
      const y = tf.tidy(() => model.forward(xs as T4, false));
      const data = (await y.data()) as Float32Array;
      y.dispose();
      return data;
    },
    /** Every variable's gradient of the loss without dropout. */
    gradients: async () => {
      const { value, grads } = tf.variableGrads(lossOf(false), model.vars);
      const out = new Map<string, Float32Array>();
      for (const [name, g] of Object.entries(grads)) out.set(name, (await g.data()) as Float32Array);
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    },
    dispose: () => tf.dispose([xs, oneHot, ...model.vars]),
  };
}

await peerMain("tfjs", async (job): Promise<PeerResult> => {
  const p = loadProblem(job);
  const reference = readReference(job.reference);
  // Training rows: one step's gradients (dropout off) against TF.js's CPU backend, the float32
  // reference the project's gradient tests use (ONNX Runtime has no training to compare with).
  // Computed first, on a model of its own: TF.js cannot move a tensor off WebGPU in Node.
  let cpuGradients: Map<string, Float32Array> | undefined;
  if (job.mode === "train") {
    await tf.setBackend("cpu");
    const cpu = setUp(p);
    cpuGradients = await cpu.gradients();
    cpu.dispose();
  }
  if (!(await tf.setBackend("webgpu"))) throw new Error("TF.js WebGPU backend unavailable");
  await tf.ready();
  const { model, lossOf, infer, gradients } = setUp(p);
  const candidates: { label: string; apply: () => void }[] = [
    { label: "TF.js defaults", apply: () => {} },
    {
      label: "WEBGPU_MATMUL_PROGRAM_TYPE=3 (MatMulPackedProgram)",
      apply: () => tf.env().set("WEBGPU_MATMUL_PROGRAM_TYPE", 3),
    },
  ];
  const checks: NonNullable<PeerResult["checks"]> = [];
  for (const c of candidates) {
    c.apply();
    let result = check(await infer(), reference);
    if (result.ok && cpuGradients) {
      const g = gradientCheck(await gradients(), cpuGradients);
      checks.push({ settings: `${c.label}, gradients vs TF.js CPU (worst: ${g.worst})`, check: g.check });
      result = g.check;
    } else checks.push({ settings: c.label, check: result });
    if (result.ok) break;
  }
  const settings = checks.map((k) => `${k.settings}: ${k.check.ok ? "outputs match" : "WRONG outputs"}`);
  if (!checks[checks.length - 1].check.ok) return { peer: "tfjs", status: "wrong", settings, checks };

  let run: () => Promise<number | undefined> = async () => (await infer(), undefined);
  if (job.mode === "train") {
    const { momentum, weightDecay, lr } = p.recipe;
    const velocity = model.vars.map((v) => tf.variable(tf.zerosLike(v), false));
    run = async () => {
      const { value, grads } = tf.variableGrads(lossOf(true), model.vars);
      tf.tidy(() => {
        model.vars.forEach((w, i) => {
          const v = tf.sub(
            tf.sub(tf.mul(velocity[i], momentum), tf.mul(w, weightDecay * lr)),
            tf.mul(grads[w.name], lr),
          );
          velocity[i].assign(v);
          w.assign(tf.add(w, v));
        });
      });
      tf.dispose(grads);
      const loss = (await value.data())[0]; // queued after the updates: waits for the whole step
      value.dispose();
      return loss;
    };
  }
  let loss: number | undefined;
  const timed = await timeRuns(job, async () => {
    const l = await run();
    loss ??= job.mode === "train" ? l : undefined;
  });
  const memory = tf.memory() as { numBytesInGPUAllocated?: number };
  return {
    peer: "tfjs",
    status: "timed",
    settings,
    checks,
    ...timed,
    ...(loss !== undefined ? { loss } : {}),
    ...(memory.numBytesInGPUAllocated
      ? {
          memory: {
            bytes: memory.numBytesInGPUAllocated,
            what: "TF.js WebGPU buffer pool (numBytesInGPUAllocated)",
          },
        }
      : {}),
  };
});
