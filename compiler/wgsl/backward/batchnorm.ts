// Batch normalisation in training, per channel c (dim 0 of the per-example shape), M = N·INNER values:
//   statistics: μ = Σx / M, σ² = Σ(x − μ)² / M (biased, used to normalise, as PyTorch), saved as μ and
//               invstd = 1/sqrt(σ² + ε); running averages updated as PyTorch does:
//               running_mean ← (1 − m)·running_mean + m·μ,
//               running_var  ← (1 − m)·running_var + m·σ²·M/(M − 1)   (unbiased)
//   normalise:  y = (x − μ)·invstd·γ + β
//   backward:   dβ = Σdy, dγ = Σdy·x̂ (conv.ts channelSumKernel), then
//               dx = γ·invstd/M · (M·dy − Σdy − x̂·Σdy·x̂), x̂ = (x − μ)·invstd recomputed
// Each channel's statistics are one fixed-order sum (util.ts reduceMain): deterministic.
import { WORKGROUP, consts, f32, header, sections, shapeText, u32 } from "../common.ts";
import {
  type KernelIdentity,
  type TrainKernelSource,
  declare,
  elementwise,
  read,
  reduceMain,
  write,
} from "./util.ts";

interface Shape {
  batch: number;
  shape: readonly number[];
}

function dims(spec: Shape) {
  const [c, ...rest] = spec.shape;
  const inner = rest.reduce((a, b) => a * b, 1);
  return { c, inner, m: spec.batch * inner };
}

/** Batch statistics of x per channel; updates the running averages in place. */
export function batchNormStatsKernel(
  id: KernelIdentity,
  spec: Shape & {
    eps: number;
    momentum: number;
    tensors: { x: string; mean: string; invstd: string; runningMean: string; runningVar: string };
  },
): TrainKernelSource {
  const { c, inner, m } = dims(spec);
  const t = spec.tensors;
  const bindings = [
    read("x", t.x),
    write("mean", t.mean),
    write("invstd", t.invstd),
    write("running_mean", t.runningMean),
    write("running_var", t.runningVar),
  ];
  // Σx² − M·μ² cancels catastrophically when |μ| ≫ σ; summing around a shift a = the channel's first
  // value keeps the terms near σ in one pass: σ² = Σ(x − a)²/M − (μ − a)² (the shifted-data algorithm).
  const { code, dispatch } = reduceMain({
    rows: c,
    count: 2,
    length: m,
    prologue: "  let shift = x[r * INNER];  // element (0, r, 0): centres the squares near the data",
    accumulate: `    let v = x[((k / INNER) * C + r) * INNER + k % INNER] - shift;  // k = n * INNER + p
    acc[0] += v;
    acc[1] = fma(v, v, acc[1]);`,
    epilogue: `  let d = sum[0] / f32(M);                      // μ − shift
  let variance = max(sum[1] / f32(M) - d * d, 0.0);
  mean[r] = shift + d;
  invstd[r] = 1.0 / sqrt(variance + EPS);
  running_mean[r] = (1.0 - MOMENTUM) * running_mean[r] + MOMENTUM * (shift + d);
  running_var[r] = (1.0 - MOMENTUM) * running_var[r] + MOMENTUM * variance * UNBIAS;`,
  });
  return {
    op: "batchnorm.stats",
    wgsl: sections(
      header(id, "batchnorm statistics", [
        `batch mean and 1/sqrt(var + eps) per channel of ${shapeText([spec.batch, ...spec.shape])}, eps ${spec.eps}`,
        `running averages: r ← (1 − ${spec.momentum})·r + ${spec.momentum}·batch (variance unbiased by M/(M − 1))`,
      ]),
      consts({
        C: u32(c),
        INNER: u32(inner),
        M: u32(m),
        EPS: f32(spec.eps),
        MOMENTUM: f32(spec.momentum),
        UNBIAS: f32(m > 1 ? m / (m - 1) : 1),
      }),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 3 * spec.batch * c * inner,
  };
}

/** y = (x − μ)·invstd·γ + β with the batch statistics. */
export function batchNormTrainKernel(
  id: KernelIdentity,
  spec: Shape & {
    tensors: { x: string; mean: string; invstd: string; gamma?: string; beta?: string; y: string };
  },
): TrainKernelSource {
  const { c, inner } = dims(spec);
  const t = spec.tensors;
  const bindings = [
    read("x", t.x),
    read("mean", t.mean),
    read("invstd", t.invstd),
    ...(t.gamma ? [read("gamma", t.gamma)] : []),
    ...(t.beta ? [read("beta", t.beta)] : []),
    write("y", t.y),
  ];
  const { code, dispatch } = elementwise(
    spec.batch * c * inner,
    `  let ch = (i / INNER) % C;
  y[i] = (x[i] - mean[ch]) * invstd[ch]${t.gamma ? " * gamma[ch]" : ""}${t.beta ? " + beta[ch]" : ""};`,
  );
  return {
    op: "batchnorm.train",
    wgsl: sections(
      header(id, "batchnorm (training)", [
        `normalise ${shapeText([spec.batch, ...spec.shape])} with batch statistics`,
      ]),
      consts({ C: u32(c), INNER: u32(inner) }),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 4 * spec.batch * c * inner,
  };
}

/** dx from dy, x, the batch statistics and the per-channel sums Σdy, Σdy·x̂. */
export function batchNormGradKernel(
  id: KernelIdentity,
  spec: Shape & {
    tensors: {
      x: string;
      dy: string;
      mean: string;
      invstd: string;
      gamma?: string;
      sumDy: string;
      sumDyXhat: string;
      dx: string;
    };
  },
): TrainKernelSource {
  const { c, inner, m } = dims(spec);
  const t = spec.tensors;
  const bindings = [
    read("x", t.x),
    read("dy", t.dy),
    read("mean", t.mean),
    read("invstd", t.invstd),
    ...(t.gamma ? [read("gamma", t.gamma)] : []),
    read("sum_dy", t.sumDy),
    read("sum_dy_xhat", t.sumDyXhat),
    write("dx", t.dx),
  ];
  const { code, dispatch } = elementwise(
    spec.batch * c * inner,
    `  let ch = (i / INNER) % C;
  let xhat = (x[i] - mean[ch]) * invstd[ch];
  let scale = ${t.gamma ? "gamma[ch] * " : ""}invstd[ch] / f32(M);
  dx[i] = scale * (f32(M) * dy[i] - sum_dy[ch] - xhat * sum_dy_xhat[ch]);`,
  );
  return {
    op: "batchnorm.grad",
    wgsl: sections(
      header(id, "batchnorm backward", [
        `dx = γ·invstd/M·(M·dy − Σdy − x̂·Σdy·x̂) over ${shapeText([spec.batch, ...spec.shape])}, M = ${m}`,
      ]),
      consts({ C: u32(c), INNER: u32(inner), M: u32(m) }),
      declare(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 8 * spec.batch * c * inner,
  };
}
