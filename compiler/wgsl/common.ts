// Shared pieces of the WGSL templates: the kernel record every template returns, the header comment,
// typed literals, and the 1-D → 3-D grid folding that keeps every dispatch dimension ≤ 65,535.
//
// Conventions of every template:
//  - shapes are baked in as WGSL `const`s (AlexNet is static), so the driver folds the index math;
//  - index math is u32 (i32 only where a padded coordinate can go negative);
//  - binding i of the plan is `@binding(i)` of group 0, in the order of `bindings`;
//  - outputs are `read_write`, everything else `read`; all storage is `array<f32>`.

/** One storage binding of a kernel: WGSL variable name → plan tensor. */
export interface KernelBinding {
  /** The WGSL variable, e.g. `x`, `w`, `y`. */
  name: string;
  /** The plan tensor bound there. */
  tensor: string;
  access: "read" | "read_write";
}

/** What a template produces; lower.ts adds the name, device and file and turns it into a PlanKernel. */
export interface KernelSource {
  op: string;
  wgsl: string;
  entryPoint: string;
  bindings: KernelBinding[];
  workgroupSize: [number, number, number];
  dispatch: [number, number, number];
  flops: number;
}

/** Who a kernel is, for its header comment and the plan. */
export interface KernelIdentity {
  /** The kernel's plan name, e.g. `k04_conv2`. */
  name: string;
  /** The source layer it computes (its anchor). */
  layer: string;
  /** The fusion group: graph nodes computed here (one before fusion). */
  group: string[];
}

/** The most workgroups WebGPU guarantees per dispatch dimension. */
export const MAX_WORKGROUPS_PER_DIM = 65_535;

/** The default 1-D workgroup: large enough to fill a GPU's SIMD lanes, small enough for lavapipe. */
export const WORKGROUP = 64;

/**
 * Spreads `count` workgroups over x and y so that neither exceeds 65,535. The kernel recomputes the
 * linear workgroup index as `wid.y * GRID_X + wid.x`, and the tail (x·y ≥ count) is masked by the
 * bounds check every template has anyway.
 */
export function foldGrid(count: number): [number, number, number] {
  if (!Number.isInteger(count) || count < 1) throw new Error(`foldGrid: bad workgroup count ${count}`);
  if (count <= MAX_WORKGROUPS_PER_DIM) return [count, 1, 1];
  const y = Math.ceil(count / MAX_WORKGROUPS_PER_DIM);
  // Storage bindings cap a tensor at 2^32 bytes, so y never needs a third dimension in practice.
  if (y > MAX_WORKGROUPS_PER_DIM) throw new Error(`foldGrid: ${count} workgroups do not fit a 2-D grid`);
  return [Math.ceil(count / y), y, 1];
}

/** A WGSL `u32` literal; throws on values that do not fit (a shape bug upstream, not user input). */
export function u32(v: number): string {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new Error(`not a u32: ${v}`);
  return `${v}u`;
}

/** A WGSL `i32` literal. */
export function i32(v: number): string {
  if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0x7fff_ffff) throw new Error(`not an i32: ${v}`);
  return `${v}i`;
}

/** A WGSL `f32` literal that round-trips the JS number as closely as f32 allows. */
export function f32(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`not a finite f32: ${v}`);
  const s = String(v);
  return `${/[.eE]/.test(s) ? s : `${s}.0`}f`;
}

/** `const NAME: u32 = 12u;` lines for a record of shape constants, aligned for reading. */
export function consts(values: Record<string, string>): string {
  const width = Math.max(...Object.keys(values).map((k) => k.length));
  return Object.entries(values)
    .map(([k, v]) => {
      const type = v.endsWith("u") ? "u32" : v.endsWith("i") ? "i32" : "f32";
      return `const ${k.padEnd(width)}: ${type} = ${v};`;
    })
    .join("\n");
}

/** The header comment every kernel starts with: kernel, layer, op, fusion group, then a summary. */
export function header(id: KernelIdentity, op: string, summary: string[]): string {
  return [
    `// alexc kernel ${id.name}`,
    `// layer: ${id.layer}   op: ${op}   fusion group: [${id.group.join(", ")}]`,
    ...summary.map((line) => `// ${line}`),
  ].join("\n");
}

/** Storage declarations for `bindings`, binding index = position. */
export function declareBindings(bindings: readonly KernelBinding[]): string {
  return bindings
    .map((b, i) => `@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<f32>; // ${b.tensor}`)
    .join("\n");
}

/**
 * The entry point of a one-invocation-per-element kernel over `total` elements: declares `i`, the
 * linear element index, and returns early past the end. `body` is indented by the caller.
 */
export function elementwiseMain(
  total: number,
  body: string,
): { code: string; dispatch: [number, number, number] } {
  const dispatch = foldGrid(Math.ceil(total / WORKGROUP));
  const code = `${consts({ TOTAL: u32(total), GRID_X: u32(dispatch[0]) })}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * GRID_X + wid.x) * ${WORKGROUP}u + lid;
  if (i >= TOTAL) { return; }
${body}
}
`;
  return { code, dispatch };
}

/** Joins non-empty WGSL sections with blank lines. */
export function sections(...parts: string[]): string {
  return parts.filter((p) => p.length > 0).join("\n\n");
}

export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}
