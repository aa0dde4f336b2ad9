// Concatenation along channels. One copy kernel per input, each writing its channel slice of the
// output: the binding count stays at two whatever the number of inputs (WebGPU guarantees only 8
// storage buffers per stage), and a concat is a pure copy, bound by memory either way.
import {
  type KernelIdentity,
  type KernelSource,
  WORKGROUP,
  consts,
  declareBindings,
  elementwiseMain,
  header,
  sections,
  shapeText,
  u32,
} from "./common.ts";

export interface ConcatPartSpec {
  batch: number;
  /** This input's per-example shape [C_i, ...]. */
  input: readonly number[];
  /** Channels of the output, and where this input's slice starts. */
  outChannels: number;
  channelOffset: number;
  tensors: { x: string; y: string };
}

export function concatKernel(id: KernelIdentity, spec: ConcatPartSpec): KernelSource {
  const [c, ...rest] = spec.input;
  const inner = rest.reduce((a, b) => a * b, 1);
  const total = spec.batch * c * inner;
  const bindings = [
    { name: "x", tensor: spec.tensors.x, access: "read" as const },
    { name: "y", tensor: spec.tensors.y, access: "read_write" as const },
  ];
  const body = `  let p = i % INNER;
  let ch = (i / INNER) % C_IN;
  let n = i / (INNER * C_IN);
  y[(n * C_OUT + C_OFFSET + ch) * INNER + p] = x[i];`;
  const { code, dispatch } = elementwiseMain(total, body);
  return {
    op: "concat",
    wgsl: sections(
      header(id, "concat", [
        `copies x ${shapeText([spec.batch, ...spec.input])} into channels [${spec.channelOffset}, ${spec.channelOffset + c}) of ${spec.outChannels}`,
      ]),
      consts({
        C_IN: u32(c),
        C_OUT: u32(spec.outChannels),
        C_OFFSET: u32(spec.channelOffset),
        INNER: u32(inner),
      }),
      declareBindings(bindings),
      code,
    ),
    entryPoint: "main",
    bindings,
    workgroupSize: [WORKGROUP, 1, 1],
    dispatch,
    flops: 0,
  };
}
