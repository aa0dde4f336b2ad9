// Winograd F(2×2, 3×3) convolution (Lavin & Gray 2016) for 3×3 stride-1 convolutions, NCHW
// activations, PyTorch OIHW weights: an alternative to conv.ts's direct kernel that does 16
// multiply-adds per 2×2 output tile and input channel instead of 36.
//
//   U[ξ][c][o] = (G g Gᵀ)[ξ]      weights, once at load time (constant at inference)
//   V[ξ][c][p] = (Bᵀ d B)[ξ]      per input channel c and 4×4 input tile p (stride 2)
//   M[ξ][o][p] = Σ_c U[ξ][c][o] · V[ξ][g·CIG + c][p]     16 independent GEMMs, K = C_in per group
//   y = bias + Aᵀ M A (2×2 per tile), then the fused activation; partial tiles store what fits
//
// ξ = 4·i + j is the position in the 4×4 transformed tile, p = (n·TH + ty)·TW + tx the tile index
// over the images of this pass (TH×TW tiles per image, the last row/column partial for odd sizes),
// o the output channel relative to OC_BASE. Out-of-image inputs of a tile are 0 (any padding works).
//
// Why this layout. The GEMM is ~90 % of the time, so everything is laid out for its loads. On this
// lavapipe (Mesa 25.0, LLVM 15; read from its generated x86 code) every storage load is a per-lane
// loop of bounds-checked scalar loads, uniform address or not (a load indexed by a loop counter and
// workgroup_id included), and a vec4 load pays that per-lane overhead once for four words. Loads,
// not multiply-adds, are the cost, so a lane keeps OCB × TPI sums (16 channels × 8 tiles measured
// best; 32 channels or 16 tiles spill for a net loss) and loads everything as vec4: V and M are
// stored with p fastest, each row padded to P4 (a multiple of 4 tiles), so 4 adjacent tiles are one
// vec4; U is stored with o fastest, so 4 adjacent channels are one vec4 (the same one in every lane
// of the workgroup, whose channel block is uniform). Measured slower or not worth it: staging U in
// workgroup memory (its loads are per-lane loops too), unrolling c with one accumulator write per
// K products, scalar loads (1.4× slower), U in a uniform buffer (~10 % faster but 64 KiB windows,
// one dispatch each). The transforms are one invocation per tile, a few percent of the time.
//
// Summation order (fixed, so the bits are the same on every run and for every tile choice): each
// M starts at 0 and adds U·V by fma over c ascending; the transforms are fixed expressions; y is
// bias + the output transform. V's padding tiles (P ≤ p < P4) are never written and their M never
// read: they only fill SIMD lanes (the weight gradient's GEMM, which sums over p, masks them).
//
// The data gradient of a 3×3 stride-1 convolution is one too (dy correlated with the weights
// transposed per group and turned 180°, padding 2 − pad): `transposedWeights` builds its U from the
// forward weight, and `fold` applies the layer below's activation derivative as dx is stored.
// Stage 3, the GEMM, is winograd-gemm.ts; the weight gradient is backward/winograd-wgrad.ts.
//
// A plan may compute output channels [OC_BASE, OC_BASE + OC_COUNT) only (w holds exactly those rows,
// as in conv.ts; blocks never straddle a group) and images [N_BASE, N_BASE + N_COUNT) only (so that
// V and M fit a binding at large batches; winograd-plan.ts splits).
import type { ActivationOp } from "../graph.ts";
import { epilogueFunction } from "./activation.ts";
import {
  type GradEpilogue,
  type TrainBinding,
  type TrainKernelSource,
  epilogueBindings,
  epilogueFunction as gradEpilogueFunction,
  read,
  write,
} from "./backward/util.ts";
import { type KernelIdentity, consts, foldGrid, header, i32, sections, shapeText, u32 } from "./common.ts";
import { type ConvGeometry, channelRangeText, describeConv } from "./conv-geometry.ts";
import { each, indent } from "./conv-tiles.ts";

/** The geometry's kernel must be 3×3 at stride 1 (winogradApplies). */
export interface WinogradSpec extends ConvGeometry {
  /** x, w (rows [outBase, outBase + outCount)), b (all output channels), y; u, v, m the scratch. */
  tensors: { x: string; w: string; b?: string; y: string; u: string; v: string; m: string };
  activation?: ActivationOp;
  /**
   * This convolution is the data gradient of a 3×3 stride-1 one (x = its ∂L/∂y, y = its ∂L/∂x, pad
   * 2 − its pad) and w is that convolution's weight, [this input's channels, this output's / groups,
   * 3, 3]: U is built from its kernels transposed per group and turned 180°. All output channels.
   */
  transposedWeights?: boolean;
  /** Instead of an activation: the layer below's activation derivative, applied as y is stored. */
  fold?: GradEpilogue;
  /** Which gradient of a training step this computes a stage of (its kernels' ops say so). */
  gradient?: "dgrad" | "wgrad";
  /** Images [batchBase, batchBase + batchCount) of x and y; all by default. */
  batchBase?: number;
  batchCount?: number;
  /** GEMM tiles (tests and the autotuner): output channels per lane, tiles per lane (a multiple of 4), lanes. */
  channelsPerInvocation?: number;
  tilesPerInvocation?: number;
  workgroupSize?: number;
}

/** Whether Winograd F(2×2, 3×3) computes this convolution: a 3×3 kernel at stride 1. */
export function winogradApplies(spec: Pick<WinogradSpec, "kernel" | "stride">): boolean {
  return spec.kernel[0] === 3 && spec.kernel[1] === 3 && spec.stride[0] === 1 && spec.stride[1] === 1;
}

/** Shape facts every stage shares; p4 = tiles rounded up to a multiple of 4 (V's and M's row stride). */
export function winogradGeometry(spec: WinogradSpec) {
  if (!winogradApplies(spec)) throw new Error("winograd: needs a 3x3 stride-1 convolution");
  const [ci, h, w] = spec.input;
  const [co, oh, ow] = spec.output;
  const { groups, outBase, outCount } = spec;
  const cig = ci / groups;
  const cog = co / groups;
  if (!Number.isInteger(cig) || !Number.isInteger(cog)) throw new Error("winograd: bad groups");
  if (outBase < 0 || outCount < 1 || outBase + outCount > co) throw new Error("winograd: bad channel range");
  if (oh !== h + spec.pad.top + spec.pad.bottom - 2 || ow !== w + spec.pad.left + spec.pad.right - 2)
    throw new Error("winograd: output shape does not match the padding");
  const n0 = spec.batchBase ?? 0;
  const nb = spec.batchCount ?? spec.batch - n0;
  if (n0 < 0 || nb < 1 || n0 + nb > spec.batch) throw new Error("winograd: bad batch range");
  const th = Math.ceil(oh / 2);
  const tw = Math.ceil(ow / 2);
  const tiles = nb * th * tw;
  return { ci, h, w, co, oh, ow, cig, cog, th, tw, n0, nb, tiles, p4: Math.ceil(tiles / 4) * 4 };
}
export type Geometry = ReturnType<typeof winogradGeometry>;

/** A stage's plan op: `conv.winograd.<stage>`, or `conv.<dgrad|wgrad>.winograd.<stage>` for a gradient's. */
export function stageOp(spec: WinogradSpec, stage: string): string {
  return `conv.${spec.gradient ? `${spec.gradient}.` : ""}winograd.${stage}`;
}

/** Multiply-adds of the direct convolution this computes ×2: what effective GFLOP/s are quoted against. */
export function directFlops(spec: WinogradSpec): number {
  const g = winogradGeometry(spec);
  return 2 * g.nb * spec.outCount * g.oh * g.ow * g.cig * 9;
}

/** Storage declarations with per-binding element types (`array<vec4<f32>>` where loads are vec4). */
export function declareTyped(bindings: readonly TrainBinding[], types: Record<string, string>): string {
  return bindings
    .map(
      (b, i) =>
        `@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<${types[b.name] ?? "f32"}>; // ${b.tensor}`,
    )
    .join("\n");
}

export function describe(spec: WinogradSpec, g: Geometry): string[] {
  const images = g.nb !== spec.batch ? `, images [${g.n0}, ${g.n0 + g.nb})` : "";
  return [
    `x ${shapeText([spec.batch, ...spec.input])} -> y ${shapeText([spec.batch, ...spec.output])}${channelRangeText(spec)}${images}`,
    describeConv(spec, spec.tensors.b ? ", bias" : ""),
    `winograd F(2x2, 3x3): ${g.th}x${g.tw} tiles per image, ${g.tiles} tiles (rows padded to ${g.p4})`,
  ];
}

/** One invocation per element of a 1-D range: the index `i`, returned past `total`. */
function linearMain(total: number, wg: number, body: string, names: Record<string, string>) {
  const dispatch = foldGrid(Math.ceil(total / wg));
  const code = `${consts({ ...names, TOTAL: u32(total), GRID_X: u32(dispatch[0]) })}

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * GRID_X + wid.x) * ${wg}u + lid;
  if (i >= TOTAL) { return; }
${indent(body, 2)}
}
`;
  return { code, dispatch };
}

export function kernel(
  op: string,
  wgsl: string,
  bindings: TrainBinding[],
  wg: number,
  dispatch: [number, number, number],
  flops: number,
): TrainKernelSource {
  return { op, wgsl, entryPoint: "main", bindings, workgroupSize: [wg, 1, 1], dispatch, flops };
}

/** A stage with one invocation per element of [0, total): its header, declarations and kernel. */
export function linearStage(
  id: KernelIdentity,
  spec: WinogradSpec,
  g: Geometry,
  s: {
    op: string;
    /** What the stage computes: the header's lines after the spec's description. */
    what: string[];
    bindings: TrainBinding[];
    total: number;
    body: string;
    names: Record<string, string>;
    flops: number;
    types?: Record<string, string>;
    /** WGSL functions the body calls. */
    functions?: string[];
  },
): TrainKernelSource {
  const { code, dispatch } = linearMain(s.total, 64, s.body, s.names);
  const head = header(id, s.op, [...describe(spec, g), ...s.what]);
  const wgsl = sections(head, declareTyped(s.bindings, s.types ?? {}), ...(s.functions ?? []), code);
  return kernel(s.op, wgsl, s.bindings, 64, dispatch, s.flops);
}

/** The constants of a stage indexed by output tiles: the output's geometry and the part's channels. */
export function tileNames(spec: WinogradSpec, g: Geometry): Record<string, string> {
  return {
    N_BASE: u32(g.n0),
    CO: u32(g.co),
    OH: u32(g.oh),
    OW: u32(g.ow),
    TH: u32(g.th),
    TW: u32(g.tw),
    P: u32(g.tiles),
    P4: u32(g.p4),
    OC_BASE: u32(spec.outBase),
    OCN: u32(spec.outCount),
  };
}

/** Stage 1, whenever the weights change: U[ξ][c][o] = G g Gᵀ, one invocation per (o, c) in w's own order. */
export function winogradWeightKernel(id: KernelIdentity, spec: WinogradSpec): TrainKernelSource {
  const g = winogradGeometry(spec);
  const t = spec.transposedWeights === true;
  if (t && (spec.outBase !== 0 || spec.outCount !== g.co))
    throw new Error("winograd: transposed weights need all output channels");
  const bindings = [read("w", spec.tensors.w), write("u", spec.tensors.u)];
  const total = spec.outCount * g.cig;
  // G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]: on the columns of g, then on the rows of that.
  const gt = (s: (k: number) => string, d: string) =>
    `let ${d}0 = ${s(0)};\nlet ${d}1 = 0.5 * (${s(0)} + ${s(1)} + ${s(2)});\nlet ${d}2 = 0.5 * (${s(0)} - ${s(1)} + ${s(2)});\nlet ${d}3 = ${s(2)};`;
  // Transposed: w is [CI][COG][3][3]; its row o is this conv's input channel o (o % CIG in its
  // group), its column c the output channel (o / CIG) * COG + c, and the kernel turns 180°.
  const index = t
    ? "let o = i / COG;\nlet c = i % COG;\nlet uc = o % CIG;\nlet uo = (o / CIG) * COG + c;"
    : "let o = i / CIG;\nlet c = i % CIG;\nlet uc = c;\nlet uo = o;";
  const tap = (ky: number, kx: number) => (t ? 8 - (ky * 3 + kx) : ky * 3 + kx);
  const body = [
    index,
    ...[0, 1, 2].map((kx) => gt((ky) => `w[i * 9u + ${tap(ky, kx)}u]`, `t${kx}_`)),
    ...[0, 1, 2, 3].map((r) => gt((kx) => `t${kx}_${r}`, `u${r}_`)),
    each(16, (xi) => `u[(${xi}u * CIG + uc) * OCN + uo] = u${xi >> 2}_${xi & 3};`),
  ].join("\n");
  return linearStage(id, spec, g, {
    op: stageOp(spec, "weights"),
    what: [
      t
        ? "U[xi][c][o] = G g G^T of w transposed per group and turned 180 degrees (w is the weight of the convolution whose data gradient this is)"
        : "U[xi][c][o] = G g G^T of w's rows [OC_BASE, OC_BASE + OC_COUNT); run whenever w changes",
    ],
    ...{ bindings, total, body },
    names: { CIG: u32(g.cig), ...(t ? { COG: u32(g.cog) } : {}), OCN: u32(spec.outCount) },
    flops: total * 42, // 6 adds/multiplies per column of G·g, 6 per row of that
  });
}

/** Stage 2: V[ξ][c][p] = Bᵀ d B, one invocation per (n, c, tile). */
export function winogradInputKernel(id: KernelIdentity, spec: WinogradSpec): TrainKernelSource {
  const g = winogradGeometry(spec);
  const { pad } = spec;
  const bindings = [read("x", spec.tensors.x), write("v", spec.tensors.v)];
  const total = g.nb * g.ci * g.th * g.tw;
  // Row r / column t of the 4×4 patch leaves the image only in the first or last tile row/column.
  const rowCheck = (r: number) => r - pad.top < 0 || 2 * (g.th - 1) + r - pad.top >= g.h;
  const colCheck = (t: number) => t - pad.left < 0 || 2 * (g.tw - 1) + t - pad.left >= g.w;
  const load = (r: number, t: number) => {
    const conds = [
      ...(rowCheck(r) ? [`iy0 + ${r}i >= 0 && iy0 + ${r}i < i32(H)`] : []),
      ...(colCheck(t) ? [`ix0 + ${t}i >= 0 && ix0 + ${t}i < i32(W)`] : []),
    ];
    const at = `u32(base + ${r * g.w + t}i)`;
    if (conds.length === 0) return `let d${r}_${t} = x[${at}];`;
    return `let ok${r}_${t} = ${conds.join(" && ")};\nlet d${r}_${t} = select(0.0, x[select(0u, ${at}, ok${r}_${t})], ok${r}_${t});`;
  };
  // Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]: on the columns of d, then on the rows of that.
  const bt = (s: (k: number) => string, d: string) =>
    `let ${d}0 = ${s(0)} - ${s(2)};\nlet ${d}1 = ${s(1)} + ${s(2)};\nlet ${d}2 = ${s(2)} - ${s(1)};\nlet ${d}3 = ${s(1)} - ${s(3)};`;
  const body = [
    `// i = ((n * CI + c) * TH + ty) * TW + tx, n relative to N_BASE
let tx = i % TW;
let ty = (i / TW) % TH;
let c = (i / (TW * TH)) % CI;
let n = i / (TW * TH * CI);
let iy0 = i32(ty * 2u) - PAD_TOP;
let ix0 = i32(tx * 2u) - PAD_LEFT;
let base = i32(((N_BASE + n) * CI + c) * H * W) + iy0 * i32(W) + ix0;
let cp = c * P4 + (n * TH + ty) * TW + tx;`,
    ...[0, 1, 2, 3].flatMap((r) => [0, 1, 2, 3].map((t) => load(r, t))),
    ...[0, 1, 2, 3].map((t) => bt((r) => `d${r}_${t}`, `e${t}_`)),
    ...[0, 1, 2, 3].map((r) => bt((t) => `e${t}_${r}`, `v${r}_`)),
    each(16, (xi) => `v[${xi}u * CI * P4 + cp] = v${xi >> 2}_${xi & 3};`),
  ].join("\n");
  return linearStage(id, spec, g, {
    op: stageOp(spec, "input"),
    what: ["V[xi][c][p] = B^T d B per 4x4 input tile"],
    ...{ bindings, total, body },
    names: {
      N_BASE: u32(g.n0),
      CI: u32(g.ci),
      H: u32(g.h),
      W: u32(g.w),
      TH: u32(g.th),
      TW: u32(g.tw),
      P4: u32(g.p4),
      PAD_TOP: i32(pad.top),
      PAD_LEFT: i32(pad.left),
    },
    flops: total * 32, // 4 adds per column of Bᵀ·d, 4 per row of that
  });
}

/** Stage 4: y = bias + Aᵀ M A per tile and channel, then the activation; partial tiles clipped. */
export function winogradOutputKernel(id: KernelIdentity, spec: WinogradSpec): TrainKernelSource {
  const g = winogradGeometry(spec);
  const hasBias = spec.tensors.b !== undefined;
  if (spec.fold && spec.activation) throw new Error("winograd: an activation and a fold both");
  const bound = [
    read("m", spec.tensors.m),
    ...(hasBias ? [read("b", spec.tensors.b!)] : []),
    write("y", spec.tensors.y),
  ];
  const bindings = [...bound, ...epilogueBindings(spec.fold, bound)];
  const total = spec.outCount * g.tiles;
  // Aᵀ = [1 1 1 0; 0 1 −1 −1]: on the columns of M, then on the rows of that.
  const at = (s: (k: number) => string, d: string) =>
    `let ${d}0 = ${s(0)} + ${s(1)} + ${s(2)};\nlet ${d}1 = ${s(1)} - ${s(2)} - ${s(3)};`;
  const value = (v: string) => (spec.activation ? `activation(${v})` : v);
  const store = (r: number, s: number) => {
    const v = value(`${hasBias ? "bias + " : ""}s${r}_${s}`);
    const at = `yo + ${r * g.ow + s}u`;
    const st = spec.fold ? `y[${at}] = activation_grad(${v}, ${at});` : `y[${at}] = ${v};`;
    const conds = [
      ...(r === 1 && g.oh % 2 === 1 ? ["ty + 1u < TH"] : []),
      ...(s === 1 && g.ow % 2 === 1 ? ["tx + 1u < TW"] : []),
    ];
    return conds.length ? `if (${conds.join(" && ")}) { ${st} }` : st;
  };
  const body = [
    `// i = o * P + p
let o = i / P;
let p = i % P;
let tx = p % TW;
let ty = (p / TW) % TH;
let n = N_BASE + p / (TW * TH);
let mo = o * P4 + p;
let yo = ((n * CO + OC_BASE + o) * OH + ty * 2u) * OW + tx * 2u;${hasBias ? "\nlet bias = b[OC_BASE + o];" : ""}`,
    each(16, (xi) => `let m${xi >> 2}_${xi & 3} = m[${xi}u * OCN * P4 + mo];`),
    ...[0, 1, 2, 3].map((j) => at((r) => `m${r}_${j}`, `r${j}_`)),
    ...[0, 1].map((r) => at((j) => `r${j}_${r}`, `s${r}_`)),
    each(2, (r) => each(2, (s) => store(r, s))),
  ].join("\n");
  return linearStage(id, spec, g, {
    op: [
      stageOp(spec, "output"),
      ...(spec.activation ? [spec.activation] : []),
      ...(spec.fold ? [`${spec.fold.op}.grad`] : []),
    ].join("+"),
    what: [
      `y = ${hasBias ? "bias + " : ""}A^T M A per 2x2 output tile`,
      ...(spec.activation ? [`fused epilogue: y = ${spec.activation}(conv)`] : []),
      ...(spec.fold ? [`fused epilogue: y = ${spec.fold.op}'(${spec.fold.y}) * (conv)`] : []),
    ],
    ...{ bindings, total, body },
    names: tileNames(spec, g),
    flops: total * (hasBias ? 28 : 24),
    functions: spec.fold ? gradEpilogueFunction(spec.fold, bindings) : epilogueFunction(spec.activation),
  });
}
