// Register-blocked convolution gradients (see ../conv-tiles.ts for why this shape suits lavapipe).
//
//  dgrad (stride 1): dx[n, c, iy, ix] = Σ_{oc ∈ group(c) ∩ part} Σ_{ky, kx} dy[n, oc, iy + PT − ky, ix + PL − kx] · w[oc, c_g, ky, kx]
//    a workgroup owns CB input channels (uniform: weight loads are broadcasts), a lane owns PX
//    consecutive dx pixels of one row for those channels (CB·PX registers) and loads the
//    PX + KW − 1 dy values of each (oc, ky) row once for all taps. Gather form: every dx element is
//    written by exactly one invocation (no atomics). Sum order per element: the previous dx (when
//    accumulating a later weight part), then oc ascending, ky ascending, kx ascending.
//
//  wgrad: dW[oc, c, ky, kx] = Σ_{n, oy, ox} dy[n, oc, oy, ox] · x[n, g·CIG + c, oy·SH − PT + ky, ox·SW − PL + kx]
//    a workgroup owns OCB output channels (uniform: dy loads are broadcasts when there is no split);
//    a lane owns one (c, ky) and all KW taps for those channels (OCB·KW registers) and walks the
//    reduction in steps of PX consecutive output pixels of a row, loading the (PX−1)·SW + KW x values
//    they cover once. When that leaves too few lanes to keep the CPU's cores busy (conv1: C_in·KH is
//    tiny), the reduction is split deterministically inside the workgroup: S slices of the
//    (n, oy, ox-block) range, each summed in order by its own lane; the partial sums go to workgroup
//    memory and lane s = 0 adds them in slice order. Sum order per element: terms in (n, oy, ox)
//    ascending within each slice, slices ascending — fixed by the constants, so bitwise reproducible.
//
//  bias (when `db` is bound, the fused plan): db[oc] = Σ_{n, oy, ox} dy[n, oc, oy, ox] is the same
//    GEMM's column of ones (a weight lane whose x is 1 everywhere). Each channel block gets one more
//    workgroup, right after its weight workgroups, in which lane j sums channel j's terms in
//    (n, oy, ox) order and stores db's row: one dispatch, no separate kernel. Serial on purpose:
//    splitting it over the lanes needs a barrier and workgroup memory, which made kernels without
//    a split 20–35 % slower on lavapipe (measured), while the serial sum is a small fraction of one
//    weight workgroup's work. Deterministic, and in the order of the unfused channel sum (conv.ts
//    channelSumKernel) wherever that one is serial (N·OH·OW ≤ 2048), so those match bit for bit.
import { consts, foldGrid, header, sections, shapeText, u32 } from "../common.ts";
import { each, indent, lanes, largestDividing, pixelBlock } from "../conv-tiles.ts";
import { type ConvGeometry, convGeometryConsts } from "../conv-geometry.ts";
import {
  type GradEpilogue,
  epilogueBindings,
  epilogueFunction,
  storeGrad,
  type KernelIdentity,
  type TrainKernelSource,
  declare,
  read,
  write,
} from "./util.ts";

/** Tile overrides, for trying shapes by hand (bench/conv-kernels.ts). */
export interface GradTiles {
  channelsPerInvocation?: number;
  pixelsPerInvocation?: number;
  workgroupSize?: number;
  splits?: number;
}

export function blockedDataGradKernel(
  id: KernelIdentity,
  spec: ConvGeometry &
    GradTiles & { accumulate: boolean; fold?: GradEpilogue; tensors: { dy: string; w: string; dx: string } },
  describe: string,
): TrainKernelSource {
  const [ci, h, w] = spec.input;
  const [, oh, ow] = spec.output;
  const [kh, kw] = spec.kernel;
  const { pad, groups, batch } = spec;
  if (spec.stride[0] !== 1 || spec.stride[1] !== 1) throw new Error("blocked dgrad needs stride 1");
  const cig = ci / groups;
  const px = spec.pixelsPerInvocation ?? pixelBlock(w, 16);
  const cb =
    spec.channelsPerInvocation ??
    largestDividing(
      [8, 4, 2, 1].filter((b) => b * px <= 32 || b === 1),
      [cig],
    );
  if (cig % cb !== 0) throw new Error(`conv dgrad: bad channel block ${cb}`);
  const bx = Math.ceil(w / px);
  const q = batch * h * bx;
  const wg = spec.workgroupSize ?? lanes(q);
  const qg = Math.ceil(q / wg);
  const blocks = ci / cb;
  const dispatch = foldGrid(qg * blocks);
  const seg = px + kw - 1;
  const bound = [read("dy", spec.tensors.dy), read("w", spec.tensors.w), write("dx", spec.tensors.dx)];
  const bindings = [...bound, ...epilogueBindings(spec.fold, bound)];

  // Segment column t is dy[.., ox0 + t], ox0 = bxi·PX + PAD_LEFT − (KW − 1).
  const colCheck = (t: number) =>
    pad.left - (kw - 1) + t < 0 || (bx - 1) * px + pad.left - (kw - 1) + t >= ow;
  const rowCheck = pad.top - (kh - 1) < 0 || h - 1 + pad.top >= oh;
  const load = (t: number) => {
    const conds = [
      ...(rowCheck ? ["row_ok"] : []),
      ...(colCheck(t) ? [`ox0 + ${t}i >= 0 && ox0 + ${t}i < i32(OW)`] : []),
    ];
    if (conds.length === 0) return `let d${t} = dy[u32(row + ${t}i)];`;
    return `let ok${t} = ${conds.join(" && ")};\nlet d${t} = select(0.0, dy[select(0u, u32(row + ${t}i), ok${t})], ok${t});`;
  };
  // dx pixel p, tap kx reads dy column ix0 + p + PL − kx = ox0 + (p + KW − 1 − kx).
  const taps = each(cb, (j) =>
    each(
      kw,
      (kx) =>
        `let w${j}_${kx} = w[w_row + ${j * kh * kw + kx}u];\n${each(px, (p) => `a${j}_${p} = fma(d${p + kw - 1 - kx}, w${j}_${kx}, a${j}_${p});`)}`,
    ),
  );
  const tail = w % px;
  const guard = (p: number, st: string) => (tail !== 0 && p >= tail ? `if (ix0 + ${p}u < W) { ${st} }` : st);
  const init = each(cb, (j) =>
    each(px, (p) =>
      spec.accumulate
        ? guard(p, `a${j}_${p} = dx[dx_row + ${j * h * w + p}u];`).replace(/^/, `var a${j}_${p} = 0.0;\n`)
        : `var a${j}_${p} = 0.0;`,
    ),
  );
  const store = each(cb, (j) =>
    each(px, (p) => guard(p, storeGrad(spec.fold, "dx", `dx_row + ${j * h * w + p}u`, `a${j}_${p}`))),
  );

  const main = `@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.y * GRID_X + wid.x;
  if (wg >= QG * (CI / CB)) { return; }
  let c0 = (wg / QG) * CB;             // first dx channel of this block (workgroup-uniform)
  let g = c0 / CI_PER_GROUP;
  let cl = c0 - g * CI_PER_GROUP;      // its index within the group = the weight's input channel
  let oc_lo = max(g * CO_PER_GROUP, OC_BASE);
  let oc_hi = min((g + 1u) * CO_PER_GROUP, OC_BASE + OC_COUNT);
  let lane = (wg % QG) * ${wg}u + lid;
  let qi = min(lane, LANES - 1u);      // lanes past the end compute a copy of the last and store nothing
  // qi = (n * H + iy) * BX + bxi
  let bxi = qi % BX;
  let iy = i32((qi / BX) % H);
  let n = qi / (BX * H);
  let ix0 = bxi * PX;
  let ox0 = i32(ix0) + PAD_LEFT - i32(KW - 1u);
  let dx_row = ((n * CI + c0) * H + u32(iy)) * W + ix0;
${indent(init, 2)}
  for (var oc = oc_lo; oc < oc_hi; oc++) {
    let dy_c = i32((n * CO + oc) * OH * OW) + ox0;
    for (var ky = 0u; ky < KH; ky++) {
      let oy = iy + PAD_TOP - i32(ky);${rowCheck ? "\n      let row_ok = oy >= 0 && oy < i32(OH);" : ""}
      let row = dy_c + oy * i32(OW);
      let w_row = ((oc - OC_BASE) * CI_PER_GROUP + cl) * KH * KW + ky * KW;
${indent(each(seg, load), 6)}
${indent(taps, 6)}
    }
  }
  if (lane >= LANES) { return; }
${indent(store, 2)}
}
`;
  return {
    op: "conv.dgrad",
    wgsl: sections(
      header(id, "conv dgrad", [
        `dy ${shapeText([batch, ...spec.output])} -> dx ${shapeText([batch, ...spec.input])}${spec.accumulate ? " (adds to dx)" : ""}`,
        describe,
        `workgroup = ${cb} dx channel(s) x ${wg} lanes; lane = ${px} consecutive dx pixels of one row`,
        "gather (no atomics); per element: previous dx if accumulating, then oc, ky, kx ascending (deterministic)",
      ]),
      consts({
        ...convGeometryConsts(spec),
        CB: u32(cb),
        PX: u32(px),
        BX: u32(bx),
        LANES: u32(q),
        QG: u32(qg),
        GRID_X: u32(dispatch[0]),
      }),
      declare(bindings),
      ...epilogueFunction(spec.fold, bindings),
      main,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [wg, 1, 1],
    dispatch,
    flops: 2 * batch * ci * h * w * (spec.outCount / groups) * kh * kw,
  };
}

/** Lanes wanted in all before the weight gradient splits its reduction (a few workgroups per core). */
const WGRAD_LANES = 512;
/** Workgroup memory for the split-K partial sums, in f32s (16 KiB, WebGPU's default limit). */
const WGRAD_SHARED = 4096;

export function blockedWeightGradKernel(
  id: KernelIdentity,
  spec: ConvGeometry & GradTiles & { tensors: { x: string; dy: string; dw: string; db?: string } },
  describe: string,
): TrainKernelSource {
  const [ci, h, w] = spec.input;
  const [co, oh, ow] = spec.output;
  const [kh, kw] = spec.kernel;
  const [sh, sw] = spec.stride;
  const { pad, groups, batch } = spec;
  const cig = ci / groups;
  const cog = co / groups;
  const ocb =
    spec.channelsPerInvocation ??
    largestDividing(
      [8, 4, 2, 1].filter((b) => b * kw <= 12 || b === 1),
      [cog, spec.outCount, spec.outBase],
    );
  if (cog % ocb !== 0 || spec.outCount % ocb !== 0 || spec.outBase % ocb !== 0)
    throw new Error(`conv wgrad: bad channel block ${ocb}`);
  const px = spec.pixelsPerInvocation ?? pixelBlock(ow, 16);
  const bx = Math.ceil(ow / px);
  const kq = batch * oh * bx; // reduction steps
  const t = cig * kh; // lanes of work per channel block: one (c, ky) each
  const blocks = spec.outCount / ocb;
  const nv = ocb * kw; // accumulators per lane
  let splits = spec.splits ?? 1;
  if (spec.splits === undefined && blocks * t < WGRAD_LANES)
    splits = Math.max(1, Math.min(Math.ceil(WGRAD_LANES / (blocks * t)), Math.floor(kq / 8)));
  // t-lanes per workgroup: at most 32 (split) or 64, spread evenly over the chunks so none is mostly empty.
  const twMax = splits > 1 ? 32 : (spec.workgroupSize ?? 64);
  const tw = Math.min(t, Math.ceil(t / Math.ceil(t / twMax) / 8) * 8);
  if (splits > 1)
    splits = Math.max(1, Math.min(splits, Math.floor(256 / tw), Math.floor(WGRAD_SHARED / (tw * nv))));
  const wg = tw * splits; // every lane has a slice s < S and a t-lane tl < TW
  const tg = Math.ceil(t / tw); // t chunks
  const db = spec.tensors.db;
  const dispatch = foldGrid((db ? tg + 1 : tg) * blocks);
  const ks = Math.ceil(kq / splits); // steps per slice
  const seg = (px - 1) * sw + kw;
  const bindings = [
    read("x", spec.tensors.x),
    read("dy", spec.tensors.dy),
    write("dw", spec.tensors.dw),
    ...(db ? [write("db", db)] : []),
  ];

  const colCheck = (c: number) => -pad.left + c < 0 || (bx - 1) * px * sw - pad.left + c >= w;
  const rowCheck = pad.top > 0 || (oh - 1) * sh - pad.top + kh - 1 >= h;
  const load = (c: number) => {
    const conds = [
      ...(rowCheck ? ["row_ok"] : []),
      ...(colCheck(c) ? [`ix0 + ${c}i >= 0 && ix0 + ${c}i < i32(W)`] : []),
    ];
    if (conds.length === 0) return `let x${c} = x[u32(row + ${c}i)];`;
    return `let ok${c} = ${conds.join(" && ")};\nlet x${c} = select(0.0, x[select(0u, u32(row + ${c}i), ok${c})], ok${c});`;
  };
  const tail = ow % px;
  const steps = each(px, (p) =>
    each(ocb, (j) => {
      const ld = `dy[dy_row + ${j * oh * ow + p}u]`;
      const d = tail !== 0 && p >= tail ? `select(0.0, ${ld}, ox0 + ${p}u < OW)` : ld;
      return `let d${j} = ${d};\n${each(kw, (kx) => `a${j}_${kx} = fma(d${j}, x${p * sw + kx}, a${j}_${kx});`)}`;
    })
      .replace(/let d(\d+) =/g, `let d$1_${p} =`)
      .replace(/\(d(\d+), x/g, `(d$1_${p}, x`),
  );
  const acc = (v: number) => `a${Math.floor(v / kw)}_${v % kw}`;
  const dwIndex = (v: number) => `dw[((r0 + ${Math.floor(v / kw)}u) * T + tl_t) * KW + ${v % kw}u]`;
  const epilogue =
    splits > 1
      ? `${each(nv, (v) => `partial[(s * TW + tl) * NV + ${v}u] = ${acc(v)};`)}
workgroupBarrier();
if (s != 0u || !t_ok) { return; }
for (var u = 1u; u < S; u++) {
${indent(
  each(nv, (v) => `${acc(v)} += partial[(u * TW + tl) * NV + ${v}u];`),
  2,
)}
}
${each(nv, (v) => `${dwIndex(v)} = ${acc(v)};`)}`
      : `if (!t_ok) { return; }
${each(nv, (v) => `${dwIndex(v)} = ${acc(v)};`)}`;

  // A block's bias workgroup follows its weight workgroups (TGB = TG + 1 per block): lavapipe hands
  // each thread a contiguous range of workgroups, so appending the cheap ones at the end would
  // leave one thread with most of the weight work (measured: up to 1.6× slower).
  const route = db
    ? `if (wg >= TGB * BLOCKS) { return; }  // workgroup-uniform
  if (wg % TGB == TG) {                // the block's bias workgroup: the column of ones
    bias_grad(wg / TGB, lid);
    return;
  }`
    : "if (wg >= TGB * BLOCKS) { return; }  // workgroup-uniform";
  const main = `${splits > 1 ? `var<workgroup> partial: array<f32, ${wg * nv}>; // [S][TW][NV]\n\n` : ""}${db ? BIAS_GRAD : ""}@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.y * GRID_X + wid.x;
  ${route}
  let r0 = (wg / TGB) * OCB;           // first weight row (output channel within the part) of this block
  let oc0 = OC_BASE + r0;
  let g = oc0 / CO_PER_GROUP;
  let s = lid / TW;                    // reduction slice
  let tl = lid % TW;
  let t_raw = (wg % TGB) * TW + tl;
  let t_ok = t_raw < T;
  let tl_t = min(t_raw, T - 1u);       // t = c * KH + ky; lanes past T compute a copy and store nothing
  let ky = tl_t % KH;
  let c = tl_t / KH;
  let x_c = (g * CI_PER_GROUP + c) * H * W;
${indent(
  each(nv, (v) => `var ${acc(v)} = 0.0;`),
  2,
)}
  let k_end = min((s + 1u) * KS, KQ);
  for (var k = s * KS; k < k_end; k++) {
    // k = (n * OH + oy) * BX + bxi
    let bxi = k % BX;
    let oy = (k / BX) % OH;
    let n = k / (BX * OH);
    let ox0 = bxi * PX;
    let iy = i32(oy * SH + ky) - PAD_TOP;${rowCheck ? "\n    let row_ok = iy >= 0 && iy < i32(H);" : ""}
    let ix0 = i32(ox0 * SW) - PAD_LEFT;
    let row = i32(n * CI * H * W + x_c) + iy * i32(W) + ix0;
    let dy_row = ((n * CO + oc0) * OH + oy) * OW + ox0;
${indent(each(seg, load), 4)}
${indent(steps, 4)}
  }
${indent(epilogue, 2)}
}
`;
  return {
    op: db ? "conv.wgrad+bias" : "conv.wgrad",
    wgsl: sections(
      header(id, db ? "conv wgrad + bias gradient" : "conv wgrad", [
        `x ${shapeText([batch, ...spec.input])}, dy ${shapeText([batch, ...spec.output])} -> dW rows [${spec.outBase}, ${spec.outBase + spec.outCount})`,
        describe,
        `workgroup = ${ocb} output channel(s) x ${tw} (c, ky) lanes${splits > 1 ? ` x ${splits} reduction slices` : ""}; lane = all ${kw} taps, ${px} output pixels per step`,
        splits > 1
          ? `per element: ${batch * oh * ow} terms in (n, oy, ox) order within each of ${splits} slices, slices added in order (deterministic)`
          : `per element: its ${batch * oh * ow} terms in (n, oy, ox) order (deterministic)`,
        ...(db
          ? [
              `bias gradient folded in (no separate bgrad kernel): db rows [${spec.outBase}, ${spec.outBase + spec.outCount}) = Σ dy per channel, the GEMM's column of ones;`,
              `  one more workgroup after each block's ${tg} weight workgroup(s), lane j sums channel j's ${batch * oh * ow} terms in (n, oy, ox) order (deterministic)`,
            ]
          : []),
      ]),
      consts({
        ...convGeometryConsts(spec),
        OCB: u32(ocb),
        PX: u32(px),
        BX: u32(bx),
        KQ: u32(kq),
        KS: u32(ks),
        S: u32(splits),
        T: u32(t),
        TW: u32(tw),
        TG: u32(tg),
        TGB: u32(db ? tg + 1 : tg),
        BLOCKS: u32(blocks),
        NV: u32(nv),
        ...(db ? { WG: u32(wg) } : {}),
        GRID_X: u32(dispatch[0]),
      }),
      declare(bindings),
      main,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [wg, 1, 1],
    dispatch,
    flops: 2 * spec.outCount * cig * kh * kw * batch * oh * ow + (db ? spec.outCount * batch * oh * ow : 0),
  };
}

/** A bias workgroup: lane j (and j + WG, … when the workgroup is narrower than the block) sums channel j. */
const BIAS_GRAD = `fn bias_grad(block: u32, lane: u32) {
  for (var j = lane; j < OCB; j += WG) {
    let oc = OC_BASE + block * OCB + j;
    var b = 0.0;
    for (var ny = 0u; ny < N * OH; ny++) {  // ny = n * OH + oy
      let row = ((ny / OH) * CO + oc) * OH * OW + (ny % OH) * OW;
      for (var ox = 0u; ox < OW; ox++) { b += dy[row + ox]; }
    }
    db[oc] = b;
  }
}

`;
