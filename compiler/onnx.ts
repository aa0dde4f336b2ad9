// ONNX export of the forward (inference) graph: the bridge to independent checking
// (onnxruntime) and to the tools users already have (Netron, PyTorch).
//
// The model is opset 13, IR version 7, built with onnx-proto's generated classes. The input keeps
// the graph input's name (NCHW f32, batch dimension symbolic `N` unless fixed); the output is
// `logits`, the loss layer's input — the loss itself is training-only and not exported, and dropout
// is the identity at inference. Weights become initializers named as the parameters
// (`<layer>.weight`, `<layer>.bias`, …) in PyTorch layout, so the file lines up with the
// safetensors checkpoint.
//
// Convention traps handled here (see shared/ALEXNET.md):
//  - LRN: ONNX divides its `alpha` by `size`; alexc's `alphaOf: "sum"` (the paper) does not, so
//    alpha_onnx = α'·size where α' is the per-term coefficient.
//  - LRN over towers: alexc normalises within each tower's channels, ONNX's LRN would reach across
//    the tower boundary, so a split input becomes Split → LRN per tower → Concat.
//  - Pool rounding: `round: ceil` is already resolved into extra bottom/right padding by the
//    checker, so pools are exported with explicit pads and ceil_mode 0.
import onnxProto from "onnx-proto";
import type { onnx as Onnx } from "onnx-proto";
import type { ConvAttrs, DenseAttrs, Graph, LrnAttrs, Node, Padding2D, Param, PoolAttrs } from "./graph.ts";
import { elementCount } from "./graph.ts";
import { DiagnosticError, diag } from "./diagnostics.ts";

const { onnx } = onnxProto;

export const ONNX_OPSET = 13;
export const ONNX_IR_VERSION = 7;
/** The ONNX output name of the network's logits. */
export const ONNX_OUTPUT = "logits";

export interface OnnxExportOptions {
  /** A fixed batch size, or `"dynamic"` (the default) for a symbolic batch dimension `N`. */
  batch?: number | "dynamic";
}

const FLOAT = 1; // TensorProto.DataType.FLOAT
const INT64 = 7; // TensorProto.DataType.INT64
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Serialises the forward graph of `graph` with `weights` (keyed by parameter name) as an ONNX model. */
export function exportOnnx(
  graph: Graph,
  weights: ReadonlyMap<string, Float32Array>,
  opts: OnnxExportOptions = {},
): Uint8Array {
  const batch = opts.batch ?? "dynamic";
  if (batch !== "dynamic" && !(Number.isSafeInteger(batch) && batch > 0)) {
    fail(graph.name, `the batch size must be a positive integer or "dynamic", got ${batch}`);
  }
  const model = new Exporter(graph, weights, batch).build();
  const bytes = onnx.ModelProto.encode(model).finish();
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** An attribute value: integers and integer lists as INT/INTS, `{ float }` as FLOAT. */
type Attr = number | number[] | { float: number };

class Exporter {
  private readonly graph: Graph;
  private readonly weights: ReadonlyMap<string, Float32Array>;
  private readonly batchDim: Onnx.TensorShapeProto.IDimension;
  private readonly nodes: Onnx.NodeProto[] = [];
  private readonly initializers: Onnx.TensorProto[] = [];
  /** Every ONNX value and node name in use: ONNX requires each value to be defined once. */
  private readonly names = new Set<string>();
  /** alexc value name → the ONNX tensor holding it (dropout aliases its input). */
  private readonly tensorOf = new Map<string, string>();
  private readonly shapes = new Map<string, number[]>();
  private readonly params: Map<string, Param>;

  constructor(graph: Graph, weights: ReadonlyMap<string, Float32Array>, batch: number | "dynamic") {
    this.graph = graph;
    this.weights = weights;
    this.batchDim = batch === "dynamic" ? { dimParam: "N" } : { dimValue: batch };
    this.params = new Map(graph.params.map((p) => [p.name, p]));
  }

  build(): Onnx.ModelProto {
    const { graph } = this;
    const needed = this.neededNodes();
    const inputs: Onnx.ValueInfoProto[] = [];
    for (const input of graph.inputs) {
      this.shapes.set(input.name, input.shape);
      if (!needed.has(input.name)) continue;
      this.claim(input.name, input.name);
      this.tensorOf.set(input.name, input.name);
      inputs.push(this.valueInfo(input.name, input.shape));
    }
    let logitsShape: number[] = [];
    for (const node of graph.nodes) {
      this.shapes.set(node.name, node.shape);
      if (!needed.has(node.name)) continue;
      this.emit(node);
      if (node.name === graph.logits) logitsShape = node.shape;
    }
    return onnx.ModelProto.create({
      irVersion: ONNX_IR_VERSION,
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: "", version: ONNX_OPSET })],
      producerName: "alexc",
      producerVersion: "0.1.0",
      docString: `Forward (inference) graph of network \`${graph.name}\`; dropout is the identity.`,
      graph: onnx.GraphProto.create({
        name: graph.name,
        node: this.nodes,
        initializer: this.initializers,
        input: inputs,
        output: [this.valueInfo(ONNX_OUTPUT, logitsShape)],
      }),
    });
  }

  /** The nodes and inputs the logits depend on; everything else (the loss, side branches) is left out. */
  private neededNodes(): Set<string> {
    const byName = new Map(this.graph.nodes.map((n) => [n.name, n]));
    if (!byName.has(this.graph.logits)) {
      fail(this.graph.name, `its logits layer \`${this.graph.logits}\` is not in the graph`);
    }
    const needed = new Set<string>();
    const stack = [this.graph.logits];
    while (stack.length > 0) {
      const name = stack.pop()!;
      if (needed.has(name)) continue;
      needed.add(name);
      const node = byName.get(name);
      if (node) {
        stack.push(...node.inputs);
      } else if (!this.graph.inputs.some((i) => i.name === name)) {
        fail(name, "it is neither a layer nor an input");
      }
    }
    return needed;
  }

  private emit(node: Node): void {
    const a = node.attrs;
    const xs = node.inputs.map((name) => this.tensorOf.get(name)!);
    const out = node.name === this.graph.logits ? ONNX_OUTPUT : node.name;
    if (a.op === "dropout" && out !== ONNX_OUTPUT) {
      // Inference: the identity. Alias the input rather than emit a node.
      this.tensorOf.set(node.name, xs[0]);
      return;
    }
    this.claim(out, node.name);
    this.tensorOf.set(node.name, out);
    switch (a.op) {
      case "conv":
        return this.conv(node, a, xs[0], out);
      case "dense":
        return this.dense(node, a, xs[0], out);
      case "relu":
        return this.op("Relu", node.name, xs, out, {});
      case "tanh":
        return this.op("Tanh", node.name, xs, out, {});
      case "sigmoid":
        return this.op("Sigmoid", node.name, xs, out, {});
      case "lrn":
        return this.lrn(node, a, xs[0], out);
      case "maxpool":
      case "avgpool":
        return this.pool(node, a, xs[0], out);
      case "batchnorm": {
        const p = ["weight", "bias", "running_mean", "running_var"].map((s) => this.param(node, s));
        // ONNX's momentum weighs the old running value, PyTorch's (alexc's) the new batch value.
        return this.op("BatchNormalization", node.name, [xs[0], ...p], out, {
          epsilon: { float: a.eps },
          momentum: { float: 1 - a.momentum },
        });
      }
      case "flatten":
        return this.op("Flatten", node.name, xs, out, { axis: 1 });
      case "concat":
        return this.op("Concat", node.name, xs, out, { axis: 1 });
      case "softmax":
        return this.op("Softmax", node.name, xs, out, { axis: 1 });
      case "dropout": // the network's output: the identity still needs the name `logits`
        return this.op("Identity", node.name, xs, out, {});
      case "softmax_cross_entropy":
        return fail(node.name, "the loss is training-only; the logits it reads are the model's output");
      default:
        return fail(node.name, `the layer kind \`${(a as { op: string }).op}\` has no ONNX mapping`);
    }
  }

  private conv(node: Node, a: ConvAttrs, x: string, out: string): void {
    const inC = this.shapes.get(node.inputs[0])![0];
    const w = this.param(node, "weight", [a.filters, inC / a.groups, a.kernel[0], a.kernel[1]]);
    const inputs = [x, w];
    if (a.bias) inputs.push(this.param(node, "bias", [a.filters]));
    this.op("Conv", node.name, inputs, out, {
      group: a.groups,
      kernel_shape: a.kernel,
      strides: a.stride,
      pads: onnxPads(a.pad),
      dilations: [1, 1],
    });
  }

  private dense(node: Node, a: DenseAttrs, x: string, out: string): void {
    const inShape = this.shapes.get(node.inputs[0])!;
    const inFeatures = elementCount(inShape);
    let flat = x;
    // Gemm needs a matrix; alexc's dense flattens [C, H, W] in CHW order, as Flatten(axis 1) does.
    if (inShape.length !== 1) {
      flat = this.fresh(`${node.name}/flatten`);
      this.op("Flatten", `${node.name}/flatten`, [x], flat, { axis: 1 });
    }
    const perGroup = inFeatures / a.groups;
    const w = this.param(node, "weight", [a.units, perGroup]);
    const bias = a.bias ? [this.param(node, "bias", [a.units])] : [];
    if (a.groups === 1) {
      this.op("Gemm", node.name, [flat, w, ...bias], out, { transB: 1 });
      return;
    }
    // A tower-local dense layer is block-diagonal: a grouped 1×1 convolution over [N, in, 1, 1]
    // computes exactly that, and keeps the initializer `<layer>.weight` in its [out, in/groups] form.
    const x4 = this.fresh(`${node.name}/as_image`);
    this.op(
      "Reshape",
      `${node.name}/as_image`,
      [flat, this.int64(`${node.name}/image_shape`, [0, inFeatures, 1, 1])],
      x4,
      {},
    );
    const w4 = this.fresh(`${w}/oihw`);
    this.op("Reshape", `${w}/oihw`, [w, this.int64(`${w}/oihw_shape`, [a.units, perGroup, 1, 1])], w4, {});
    const y4 = this.fresh(`${node.name}/conv`);
    this.op("Conv", `${node.name}/conv`, [x4, w4, ...bias], y4, { group: a.groups, kernel_shape: [1, 1] });
    this.op("Flatten", node.name, [y4], out, { axis: 1 });
  }

  private lrn(node: Node, a: LrnAttrs, x: string, out: string): void {
    // alexc sums over c ± ⌊n/2⌋; ONNX over [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉], which is the same
    // window for an odd size. An even n therefore maps to ONNX size n + 1.
    const size = 2 * Math.floor(a.size / 2) + 1;
    const perTerm = a.alphaOf === "sum" ? a.alpha : a.alpha / a.size;
    const attrs = { size, alpha: { float: perTerm * size }, beta: { float: a.beta }, bias: { float: a.k } };
    if (a.groups === 1) {
      this.op("LRN", node.name, [x], out, attrs);
      return;
    }
    const channels = this.shapes.get(node.inputs[0])![0];
    if (channels % a.groups !== 0) {
      fail(node.name, `${channels} channels do not split into ${a.groups} towers`);
    }
    // Opset 13 Split without a `split` input cuts the axis into equal parts, one per output.
    const parts = Array.from({ length: a.groups }, (_, t) => this.fresh(`${node.name}/tower${t}`));
    this.op("Split", `${node.name}/split`, [x], parts, { axis: 1 });
    const normalised = parts.map((part, t) => {
      const y = this.fresh(`${node.name}/tower${t}/lrn`);
      this.op("LRN", `${node.name}/tower${t}`, [part], y, attrs);
      return y;
    });
    this.op("Concat", node.name, normalised, out, { axis: 1 });
  }

  private pool(node: Node, a: PoolAttrs, x: string, out: string): void {
    const { pad, window } = a;
    // onnxruntime rejects a pad as large as the window (such a window could see only padding).
    if (Math.max(pad.top, pad.bottom) >= window[0] || Math.max(pad.left, pad.right) >= window[1]) {
      fail(node.name, `padding ${JSON.stringify(pad)} is not smaller than the ${window.join("×")} window`);
    }
    const attrs: Record<string, Attr> = { kernel_shape: window, strides: a.stride, pads: onnxPads(pad) };
    // alexc's average pool divides by the number of real (unpadded) pixels under the window.
    if (a.op === "avgpool") attrs.count_include_pad = 0;
    this.op(a.op === "maxpool" ? "MaxPool" : "AveragePool", node.name, [x], out, attrs);
  }

  /** Adds the parameter `<layer>.<suffix>` as an initializer (once) and returns its name. */
  private param(node: Node, suffix: string, expectedShape?: number[]): string {
    const name = node.params.find((p) => p === `${node.name}.${suffix}`);
    const param = name === undefined ? undefined : this.params.get(name);
    if (param === undefined) return fail(node.name, `it has no parameter \`${node.name}.${suffix}\``);
    if (expectedShape && !sameShape(param.shape, expectedShape)) {
      fail(node.name, `\`${param.name}\` has shape [${param.shape}], expected [${expectedShape}]`);
    }
    if (this.names.has(param.name)) return param.name;
    const values = this.weights.get(param.name);
    if (values === undefined) fail(node.name, `no weights given for \`${param.name}\``);
    if (values.length !== elementCount(param.shape)) {
      fail(
        node.name,
        `\`${param.name}\` has ${values.length} values, its shape [${param.shape}] needs ${elementCount(param.shape)}`,
      );
    }
    this.claim(param.name, node.name);
    this.initializers.push(
      onnx.TensorProto.create({
        name: param.name,
        dataType: FLOAT,
        dims: param.shape,
        rawData: f32LittleEndian(values),
      }),
    );
    return param.name;
  }

  /** An int64 constant initializer (Reshape's target shape). */
  private int64(name: string, values: number[]): string {
    this.claim(name, name);
    this.initializers.push(
      onnx.TensorProto.create({ name, dataType: INT64, dims: [values.length], int64Data: values }),
    );
    return name;
  }

  private op(
    type: string,
    name: string,
    inputs: string[],
    outputs: string | string[],
    attrs: Record<string, Attr>,
  ): void {
    this.nodes.push(
      onnx.NodeProto.create({
        name,
        opType: type,
        input: inputs,
        output: Array.isArray(outputs) ? outputs : [outputs],
        attribute: Object.entries(attrs).map(([key, value]) => attribute(key, value)),
      }),
    );
  }

  /** Claims a derived value name. alexc names cannot contain `/`, so these never meet a layer's. */
  private fresh(name: string): string {
    this.claim(name, name);
    return name;
  }

  private claim(name: string, owner: string): void {
    if (this.names.has(name)) fail(owner, `the ONNX value name \`${name}\` would be defined twice`);
    this.names.add(name);
  }

  private valueInfo(name: string, shape: number[]): Onnx.ValueInfoProto {
    return onnx.ValueInfoProto.create({
      name,
      type: {
        tensorType: {
          elemType: FLOAT,
          shape: { dim: [this.batchDim, ...shape.map((d) => ({ dimValue: d }))] },
        },
      },
    });
  }
}

function attribute(name: string, value: Attr): Onnx.AttributeProto {
  const Type = onnx.AttributeProto.AttributeType;
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: integer expected, got ${value}`);
    return onnx.AttributeProto.create({ name, type: Type.INT, i: value });
  }
  if (Array.isArray(value)) return onnx.AttributeProto.create({ name, type: Type.INTS, ints: value });
  return onnx.AttributeProto.create({ name, type: Type.FLOAT, f: value.float });
}

/** ONNX orders pads as all begins then all ends: [top, left, bottom, right]. */
function onnxPads(p: Padding2D): number[] {
  return [p.top, p.left, p.bottom, p.right];
}

/** raw_data is little-endian by the ONNX spec, whatever the host. */
function f32LittleEndian(values: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN_HOST)
    return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i], true);
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function fail(name: string, problem: string): never {
  throw new DiagnosticError(diag("AX4007", { name, problem }, undefined));
}
