// The weight gradient of a 3×3 stride-1 convolution by Winograd F(2×2, 3×3) (../winograd.ts gives
// the forward and the layout). The forward is y = Aᵀ [U ⊙ V] A per 2×2 output tile with U = G g Gᵀ
// and V = Bᵀ d B, so per tile ∂L/∂M = A dy Aᵀ and, summed over tiles and images,
//
//   V[ξ][c][p]  = Bᵀ d B                          the forward's input transform (its V where it fits)
//   W[ξ][o][p]  = A dy Aᵀ                         per output channel o of the part and tile p
//   Z[ξ][o][c]  = Σ_p W[ξ][o][p] · V[ξ][g·CIG + c][p]   16 GEMMs reducing over the P tiles
//   dw[o][c]    = Gᵀ Z G                          the 3×3 kernel's gradient
//
// 16 products per tile where the direct kernel does 36 per output pixel. The spec is the forward
// convolution's (rows [OC_BASE, OC_BASE + OC_COUNT) the weight part's), its tensors read as x the
// input, y ∂L/∂y, w ∂L/∂w (the part's rows), b ∂L/∂b (optional: the GEMM folds it in), v V, m W,
// u Z. All images in one pass (lower-train-winograd.ts lowers the direct kernel otherwise). Sums
// are fixed-order: Z over p ascending in vec4 steps, then the 4 lanes.
import { type KernelIdentity, u32 } from "../common.ts";
import { each, indent } from "../conv-tiles.ts";
import { type WinogradSpec, linearStage, stageOp, tileNames, winogradGeometry } from "../winograd.ts";
import { type TrainKernelSource, read, write } from "./util.ts";

/**
 * Output channels × input channels per GEMM invocation. Measured on lavapipe at alexnet-fmnist's
 * conv3–conv5 (batch 128): 4 × 4 48–52 ms per GEMM, 4 × 8 48–51, 8 × 4 60–64, 2 × 8 56–62, 8 × 8
 * 54–80.
 */
const OB = 4;
const CB = 4;

/** W[ξ][o][p] = A dy Aᵀ; zeros for the padding tiles P ≤ p < P4, which the GEMM sums over. */
export function winogradDyKernel(id: KernelIdentity, spec: WinogradSpec): TrainKernelSource {
  const g = winogradGeometry(spec);
  const bindings = [read("dy", spec.tensors.y), write("m", spec.tensors.m)];
  const total = spec.outCount * g.p4;
  // A dy Aᵀ with Aᵀ = [1 1 1 0; 0 1 −1 −1]: from 2 values a, b to (a, a + b, a − b, −b).
  const a = (s: (k: number) => string, d: string) =>
    `let ${d}0 = ${s(0)};\nlet ${d}1 = ${s(0)} + ${s(1)};\nlet ${d}2 = ${s(0)} - ${s(1)};\nlet ${d}3 = -${s(1)};`;
  const load = (r: number, s: number) => {
    const conds = [
      ...(r === 1 && g.oh % 2 === 1 ? ["ty + 1u < TH"] : []),
      ...(s === 1 && g.ow % 2 === 1 ? ["tx + 1u < TW"] : []),
    ];
    const at = `yo + ${r * g.ow + s}u`;
    if (conds.length === 0) return `let d${r}_${s} = dy[${at}];`;
    // a partial tile's missing outputs have no gradient (the forward never stored them)
    return `let ok${r}_${s} = ${conds.join(" && ")};\nlet d${r}_${s} = select(0.0, dy[select(yo, ${at}, ok${r}_${s})], ok${r}_${s});`;
  };
  const body = [
    `// i = o * P4 + p
let o = i / P4;
let p = i % P4;
let mo = o * P4 + p;
if (p >= P) {
${indent(
  each(16, (xi) => `m[${xi}u * OCN * P4 + mo] = 0.0;`),
  2,
)}
  return;
}
let tx = p % TW;
let ty = (p / TW) % TH;
let n = N_BASE + p / (TW * TH);
let yo = ((n * CO + OC_BASE + o) * OH + ty * 2u) * OW + tx * 2u;`,
    each(2, (r) => each(2, (s) => load(r, s))),
    ...[0, 1].map((s) => a((r) => `d${r}_${s}`, `e${s}_`)),
    ...[0, 1, 2, 3].map((i) => a((s) => `e${s}_${i}`, `w${i}_`)),
    each(16, (xi) => `m[${xi}u * OCN * P4 + mo] = w${xi >> 2}_${xi & 3};`),
  ].join("\n");
  return linearStage(id, spec, g, {
    op: stageOp(spec, "dy"),
    what: ["W[xi][o][p] = A dy A^T per 2x2 tile of dy (the gradient of the forward's M); padding tiles 0"],
    ...{ bindings, total, body },
    names: tileNames(spec, g),
    flops: total * 16,
  });
}

/** The GEMM's blocks for this spec: OB output and CB input channels where they divide, else 1. */
function blocks(spec: WinogradSpec, g = winogradGeometry(spec)) {
  const ob = spec.outCount % OB === 0 && g.cog % OB === 0 && spec.outBase % OB === 0 ? OB : 1;
  const cb = g.cig % CB === 0 ? CB : 1;
  return { ob, cb };
}

/** Z[ξ][o][c] = Σ_p W[ξ][o][p] · V[ξ][g·CIG + c][p]: OB × CB sums per invocation, vec4 over p. */
export function winogradWgradGemmKernel(id: KernelIdentity, spec: WinogradSpec): TrainKernelSource {
  const g = winogradGeometry(spec);
  const { ob, cb } = blocks(spec, g);
  const db = spec.tensors.b;
  const bindings = [
    read("m", spec.tensors.m),
    read("v", spec.tensors.v),
    write("z", spec.tensors.u),
    ...(db ? [write("db", db)] : []),
  ];
  const total = (16 * spec.outCount * g.cig) / (ob * cb);
  // V's padding tiles are never written (they may hold anything, NaN included): the last vec4 is
  // masked where P is not a multiple of 4. W's padding is 0.
  const tail = g.tiles % 4 !== 0;
  const mask = `vec4<bool>(${each(4, (k) => `P4 - 4u + ${k}u < P`, ", ")})`;
  const step = (q: string, masked: boolean) =>
    [
      each(ob, (j) => `let w${j} = m[(xi * OCN + o0 + ${j}u) * Q4 + ${q}];`),
      each(cb, (k) =>
        masked
          ? `let v${k} = select(vec4<f32>(0.0), v[(xi * CI + c0 + ${k}u) * Q4 + ${q}], ${mask});`
          : `let v${k} = v[(xi * CI + c0 + ${k}u) * Q4 + ${q}];`,
      ),
      each(ob, (j) => each(cb, (k) => `a${j}_${k} = fma(w${j}, v${k}, a${j}_${k});`)),
      ...(db ? [each(ob, (j) => `b${j} = b${j} + w${j};`)] : []),
    ].join("\n");
  const body = [
    `// i = (xi * OCN / OB + o block) * CIG / CB + c block
let cblk = i % (CIG / ${cb}u);
let oblk = (i / (CIG / ${cb}u)) % (OCN / ${ob}u);
let xi = i / ((CIG / ${cb}u) * (OCN / ${ob}u));
let o0 = oblk * ${ob}u;
let grp = (OC_BASE + o0) / COG;   // a block never straddles a group
let c0 = grp * CIG + cblk * ${cb}u; // V's channel`,
    each(ob, (j) => each(cb, (k) => `var a${j}_${k} = vec4<f32>(0.0);`)),
    ...(db ? [each(ob, (j) => `var b${j} = vec4<f32>(0.0);`)] : []),
    `for (var q = 0u; q < ${tail ? "Q4 - 1u" : "Q4"}; q++) {\n${indent(step("q", false), 2)}\n}`,
    ...(tail ? [`{\n${indent(step("Q4 - 1u", true), 2)}\n}`] : []),
    each(ob, (j) =>
      each(
        cb,
        (k) =>
          `z[(xi * OCN + o0 + ${j}u) * CIG + cblk * ${cb}u + ${k}u] = ((a${j}_${k}.x + a${j}_${k}.y) + a${j}_${k}.z) + a${j}_${k}.w;`,
      ),
    ),
    // W at ξ = 5 (row 1, column 1 of A dy Aᵀ; A's row 1 is (1, 1)) is each 2×2 tile's sum of dy, so
    // its sum over the tiles is the bias gradient: stored by ξ = 5's first channel block
    ...(db
      ? [
          `if (xi == 5u && cblk == 0u) {\n${indent(
            each(ob, (j) => `db[OC_BASE + o0 + ${j}u] = ((b${j}.x + b${j}.y) + b${j}.z) + b${j}.w;`),
            2,
          )}\n}`,
        ]
      : []),
  ].join("\n");
  return linearStage(id, spec, g, {
    op: `${stageOp(spec, "gemm")}${db ? "+bias" : ""}`,
    what: [
      `16 GEMMs Z[xi] = W[xi] V[xi]^T over the ${g.tiles} tiles; invocation = ${ob} output x ${cb} input channels`,
      ...(db
        ? ["fused: the bias gradient db[o] = sum over p of W[5][o][p] (the GEMM's column of ones)"]
        : []),
      "each Z: vec4 sums over p ascending, then the 4 lanes in order (fixed order, deterministic)",
    ],
    ...{ bindings, total, body },
    names: {
      CI: u32(g.ci),
      CIG: u32(g.cig),
      COG: u32(g.cog),
      OC_BASE: u32(spec.outBase),
      OCN: u32(spec.outCount),
      P: u32(g.tiles),
      P4: u32(g.p4),
      Q4: u32(g.p4 / 4),
    },
    flops: 2 * 16 * spec.outCount * g.cig * g.tiles,
    types: { m: "vec4<f32>", v: "vec4<f32>" },
  });
}

/** dw[o][c] = Gᵀ Z G: the 3×3 gradient of each (output, input) channel pair of the part. */
export function winogradWgradOutputKernel(id: KernelIdentity, spec: WinogradSpec): TrainKernelSource {
  const g = winogradGeometry(spec);
  const bindings = [read("z", spec.tensors.u), write("dw", spec.tensors.w)];
  const total = spec.outCount * g.cig;
  // Gᵀ with G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]: from 4 values to 3.
  const gt = (s: (k: number) => string, d: string) =>
    `let ${d}0 = ${s(0)} + 0.5 * (${s(1)} + ${s(2)});\nlet ${d}1 = 0.5 * (${s(1)} - ${s(2)});\nlet ${d}2 = 0.5 * (${s(1)} + ${s(2)}) + ${s(3)};`;
  const body = [
    "// i = o * CIG + c: dw's own order\nlet o = i / CIG;\nlet c = i % CIG;",
    each(16, (xi) => `let z${xi >> 2}_${xi & 3} = z[(${xi}u * OCN + o) * CIG + c];`),
    ...[0, 1, 2, 3].map((j) => gt((r) => `z${r}_${j}`, `r${j}_`)),
    ...[0, 1, 2].map((ky) => gt((j) => `r${j}_${ky}`, `s${ky}_`)),
    each(9, (t) => `dw[i * 9u + ${t}u] = s${Math.floor(t / 3)}_${t % 3};`),
  ].join("\n");
  return linearStage(id, spec, g, {
    op: stageOp(spec, "output"),
    what: ["dw[o][c] = G^T Z G per (output, input) channel pair of the part"],
    ...{ bindings, total, body },
    names: { CIG: u32(g.cig), OCN: u32(spec.outCount) },
    flops: total * 36,
  });
}

/** Bytes of V, W and Z for `spec` (all images in one pass). */
export function winogradWgradScratchBytes(spec: WinogradSpec) {
  const g = winogradGeometry(spec);
  return { v: 16 * g.ci * g.p4 * 4, m: 16 * spec.outCount * g.p4 * 4, u: 16 * spec.outCount * g.cig * 4 };
}
