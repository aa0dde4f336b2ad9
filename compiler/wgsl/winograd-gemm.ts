// Stage 3 of Winograd F(2×2, 3×3) (winograd.ts, whose header explains the layout): the 16 GEMMs
// M[ξ] = U[ξ]·V[ξ], which are ~90 % of its time, and the tile choices the autotuner measures.
import type { TrainKernelSource } from "./backward/util.ts";
import { read, write } from "./backward/util.ts";
import { type KernelIdentity, consts, foldGrid, header, sections, u32 } from "./common.ts";
import { each, indent, lanes, largestDividing } from "./conv-tiles.ts";
import { type WinogradSpec, declareTyped, describe, kernel, stageOp, winogradGeometry } from "./winograd.ts";

/** The GEMM's tiles: OCB channels (dividing the group, the part and its base), TPI tiles, WG lanes. */
export function winogradGemmTiles(spec: WinogradSpec, g = winogradGeometry(spec)) {
  const tpi = spec.tilesPerInvocation ?? 8;
  if (tpi % 4 !== 0 || tpi < 4)
    throw new Error(`winograd: tiles per invocation ${tpi} is not a multiple of 4`);
  const ocb =
    spec.channelsPerInvocation ?? largestDividing([16, 8, 4, 2, 1], [g.cog, spec.outCount, spec.outBase]);
  if (g.cog % ocb !== 0 || spec.outCount % ocb !== 0 || spec.outBase % ocb !== 0)
    throw new Error(`winograd: bad channel block ${ocb}`);
  const wg = spec.workgroupSize ?? lanes(Math.ceil(g.p4 / tpi));
  return { ocb, tpi, wg };
}

/** Stage 3: M[ξ][o][p] = Σ_c U[ξ][c][o] · V[ξ][g·CIG + c][p], vec4 over 4 adjacent tiles. */
export function winogradGemmKernel(id: KernelIdentity, spec: WinogradSpec): TrainKernelSource {
  const g = winogradGeometry(spec);
  const { ocb, tpi, wg } = winogradGemmTiles(spec, g);
  const bindings = [read("u", spec.tensors.u), read("v", spec.tensors.v), write("m", spec.tensors.m)];
  const s4 = tpi / 4; // vec4s of tiles per lane
  const span = wg * s4; // vec4s per workgroup
  const tb = Math.ceil(g.p4 / 4 / span);
  const blocks = spec.outCount / ocb;
  const count = 16 * blocks * tb;
  const dispatch = foldGrid(count);
  const folded = dispatch[0] * dispatch[1] !== count;
  // Four adjacent channels of U are one vec4 when blocks are whole vec4s (OCN is then a multiple of 4).
  const uvec = ocb % 4 === 0;
  const comp = ["x", "y", "z", "w"];
  const uOf = (j: number) => (uvec ? `u${j >> 2}.${comp[j & 3]}` : `u${j}`);
  // One input channel per iteration (unrolled steps measured slower; see the header).
  const loop = `for (var c = 0u; c < CIG; c++) {
  let vr = vb + c * Q4;
  let ur = ub + c * ${uvec ? "(OCN / 4u)" : "OCN"};
${indent(
  each(s4, (s) => `let v${s} = v[vr + k${s}];`),
  2,
)}
${indent(uvec ? each(ocb / 4, (q) => `let u${q} = u[ur + ${q}u];`) : each(ocb, (j) => `let u${j} = u[ur + ${j}u];`), 2)}
${indent(
  each(ocb, (j) => each(s4, (s) => `a${j}_${s} = fma(vec4<f32>(${uOf(j)}), v${s}, a${j}_${s});`)),
  2,
)}
}`;
  const lanesCode = each(s4, (s) => `let q${s} = t0 + ${s * wg}u + lid;\nlet k${s} = min(q${s}, Q4 - 1u);`);
  const zero = each(ocb, (j) => each(s4, (s) => `var a${j}_${s} = vec4<f32>(0.0);`));
  const store = each(s4, (s) =>
    [
      `if (q${s} < Q4) {`,
      indent(
        each(ocb, (j) => `m[m0 + ${j}u * Q4 + q${s}] = a${j}_${s};`),
        2,
      ),
      "}",
    ].join("\n"),
  );
  const code = `${consts({
    CI: u32(g.ci),
    CIG: u32(g.cig),
    COG: u32(g.cog),
    OC_BASE: u32(spec.outBase),
    OCN: u32(spec.outCount),
    Q4: u32(g.p4 / 4),
    TB: u32(tb),
    BLOCKS: u32(blocks),
    GRID_X: u32(dispatch[0]),
  })}

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // wgi = (xi * BLOCKS + block) * TB + tile block: neighbours share U and walk V
  let wgi = wid.y * GRID_X + wid.x;${folded ? `\n  if (wgi >= 16u * BLOCKS * TB) { return; }` : ""}
  let t0 = (wgi % TB) * ${span}u;            // first vec4 of tiles of this workgroup
  let r0 = ((wgi / TB) % BLOCKS) * ${ocb}u;  // first channel of the block within the part
  let xi = wgi / (TB * BLOCKS);
  let grp = (OC_BASE + r0) / COG;            // the block never straddles a group
  let vb = (xi * CI + grp * CIG) * Q4;
  let ub = ${uvec ? "(xi * CIG * OCN + r0) / 4u" : "xi * CIG * OCN + r0"};
  // lane vec4s lid + s * WG: past the end they load the last one and store nothing
${indent(lanesCode, 2)}
${indent(zero, 2)}
${indent(loop, 2)}
  let m0 = (xi * OCN + r0) * Q4;
${indent(store, 2)}
}
`;
  const head = header(id, stageOp(spec, "gemm"), [
    ...describe(spec, g),
    `16 GEMMs M[xi] = U[xi] V[xi]; workgroup = one xi x ${ocb} output channels x ${wg} lanes; lane = ${tpi} tiles (vec4s lid + s*${wg})`,
    "each M: 0, then fma over c ascending (fixed order, deterministic)",
  ]);
  const types = { u: uvec ? "vec4<f32>" : "f32", v: "vec4<f32>", m: "vec4<f32>" };
  const flops = 2 * 16 * spec.outCount * g.cig * g.tiles;
  return kernel(
    stageOp(spec, "gemm"),
    sections(head, declareTyped(bindings, types), code),
    bindings,
    wg,
    dispatch,
    flops,
  );
}
