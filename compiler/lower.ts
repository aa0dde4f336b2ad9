// lower: Graph → CompiledPlan for forward (inference) execution on one device.
//
// One kernel per fusion group (compiler/fuse.ts; unfused, per graph node), in graph order, except:
//  - dropout (identity at inference) and flatten (a view of NCHW memory) become aliases: no kernel;
//  - softmax_cross_entropy is not executed: the logits are its input;
//  - a conv/dense whose weight exceeds `maxBindingBytes` gets one kernel per weight part, each
//    computing its slice of the output rows (output channels);
//  - a concat gets one copy kernel per input;
//  - a 3×3 stride-1 convolution with enough output tiles runs as Winograd F(2×2, 3×3): input
//    transform, GEMM, output transform in the schedule, and a weight transform in `prepare` (run once
//    per parameter upload), unless `winograd: false` (training and placed plans);
//  - with `storage: "f16"` every tensor is f16 in memory and each kernel is its f32 form rewritten
//    to load and store f16 (wgsl/f16-storage.ts).
// A batch whose activations exceed `maxBindingBytes` is micro-batched (`microBatchFor`, the plan's
// `microBatch`): the kernels are lowered for a divisor of the batch and the runtime runs them per chunk.
// Buffers are one per plan tensor; the memory planner (arenas, reuse) comes later.
import { type Code, type Diagnostic, DiagnosticError, diag } from "./diagnostics.ts";
import { type Fusion, computedBy, fusedAt, planFusion } from "./fuse.ts";
import { type Tiles, type TunableKind, type TunableShape, type TuningTable, tilesFor } from "./tuning.ts";
import { type Graph, type Node, elementCount } from "./graph.ts";
import {
  type CompiledPlan,
  PLAN_VERSION,
  type Plan,
  type PlanKernel,
  type PlanTensor,
  planSchema,
} from "./plan.ts";
import { activationKernel } from "./wgsl/activation.ts";
import { batchNormKernel } from "./wgsl/batchnorm.ts";
import type { TrainKernelSource } from "./wgsl/backward/util.ts";
import type { KernelIdentity, KernelSource } from "./wgsl/common.ts";
import { concatKernel } from "./wgsl/concat.ts";
import { type ConvSpec, convKernel } from "./wgsl/conv.ts";
import type { ConvGeometry } from "./wgsl/conv-geometry.ts";
import { denseKernel } from "./wgsl/dense.ts";
import { lrnKernel } from "./wgsl/lrn.ts";
import { poolKernel } from "./wgsl/pool.ts";
import { softmaxKernel } from "./wgsl/softmax.ts";
import { withF16Storage } from "./wgsl/f16-storage.ts";
import { winogradApplies } from "./wgsl/winograd.ts";
import { winogradPlan } from "./wgsl/winograd-plan.ts";
import { type WeightPart, microBatchFor, splitWeightRows } from "./weight-split.ts";

export interface LowerOptions {
  /** Examples per run; every activation is [batch, ...]. */
  batch: number;
  /** The device's maxStorageBufferBindingSize: no single binding may exceed it. */
  maxBindingBytes: number;
  /** The source file, recorded in the plan. */
  source: string;
  /** e.g. `alexc 0.1.0`, recorded in the plan. */
  compilerVersion: string;
  /** Fuse element-wise layers into their anchors (compiler/fuse.ts); default true. */
  fuse?: boolean;
  /** Measured tile choices per kernel shape for this adapter (tuning.ts, runtime/autotune.ts). */
  tuning?: TuningTable;
  /** Called with every tunable kernel's shape as it is lowered (the autotuner collects them). */
  onTunable?: (kind: TunableKind, shape: TunableShape) => void;
  /**
   * How activations and parameters are stored: `f16` halves their bytes (arithmetic stays f32; see
   * wgsl/f16-storage.ts) and needs the device feature `shader-f16`. Default `f32`.
   */
  storage?: "f32" | "f16";
  /**
   * Compute 3×3 stride-1 convolutions with Winograd F(2×2, 3×3) (wgsl/winograd.ts) where the scratch
   * fits. Default true; training plans and placed plans pass false (their weights change every step
   * or live on other devices, and the transformed weights are made once per upload).
   */
  winograd?: boolean;
}

/** The tiles for a tunable kernel (reporting it to `onTunable`). */
export function tiles(opts: LowerOptions, kind: TunableKind, shape: TunableShape): Tiles {
  opts.onTunable?.(kind, shape);
  return tilesFor(opts.tuning, kind, shape);
}

const DEVICE = 0;

/** Winograd only where a convolution has at least this many output tiles per run (batch × tiles). */
const WINOGRAD_MIN_TILES = 16;

/** Bytes per stored element. */
function elementBytes(storage: LowerOptions["storage"]): number {
  return storage === "f16" ? 2 : 4;
}

/** `stem.conv` → `stem_conv`: kernel names must match /^[a-z][a-z0-9_]*$/ (the `k` prefix starts it). */
function sanitize(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_]/g, "_");
}

function internal(message: string, span?: Node["span"]): DiagnosticError {
  return new DiagnosticError(diag("AX9001", { message }, span));
}

function fail(
  code: Code,
  args: Record<string, string | number>,
  span: Node["span"] | undefined,
  help?: string,
): never {
  const d: Diagnostic = diag(code, args, span, help ? { help } : {});
  throw new DiagnosticError(d);
}

class Lowering {
  readonly graph: Graph;
  readonly opts: LowerOptions;
  readonly fusion: Fusion;
  readonly tensors = new Map<string, PlanTensor>();
  /** Per-example shape of every value (graph input or node output) by name. */
  readonly shapes = new Map<string, number[]>();
  /** Alias → the tensor whose buffer it shares (always a root, never another alias). */
  readonly roots = new Map<string, string>();
  readonly weightParts = new Map<string, WeightPart[]>();
  readonly kernels: PlanKernel[] = [];
  /** Kernels run once per parameter upload (Winograd weight transforms), outside the schedule. */
  readonly prepare: string[] = [];
  readonly wgsl: Record<string, string> = {};
  readonly dtype: "f32" | "f16";
  readonly elementBytes: number;

  constructor(graph: Graph, opts: LowerOptions) {
    this.graph = graph;
    this.opts = opts;
    this.dtype = opts.storage ?? "f32";
    this.elementBytes = elementBytes(opts.storage);
    this.fusion = planFusion(graph, { enabled: opts.fuse !== false });
  }

  run(): CompiledPlan {
    const { graph, opts } = this;
    if (!Number.isInteger(opts.batch) || opts.batch < 1)
      throw internal(`batch must be a positive integer, got ${opts.batch}`);
    for (const input of graph.inputs) this.activation(input.name, input.shape, "input", input.span);
    this.lowerParams();
    const width = Math.max(2, String(graph.nodes.length - 1).length);
    graph.nodes.forEach((node, index) => {
      // an absorbed layer is computed by its anchor's kernels (fuse.ts); a dropout stays an alias here
      if (computedBy(this.fusion, node.name)) return;
      const group = fusedAt(this.fusion, node.name)?.members ?? [node.name];
      this.lowerNode(node, `k${String(index).padStart(width, "0")}_${group.map(sanitize).join("_")}`);
    });

    const logits = this.tensors.get(graph.logits);
    if (!logits) throw internal(`the logits \`${graph.logits}\` are not computed by any node`);
    if (logits.role === "activation") logits.role = "logits";

    const plan: Plan = {
      format: "alexc-plan",
      version: PLAN_VERSION,
      compiler: opts.compilerVersion,
      network: graph.name,
      source: opts.source,
      mode: "forward",
      batch: opts.batch,
      classes: graph.classes,
      towers: graph.towers,
      devices: [{ index: DEVICE, label: `device ${DEVICE}` }],
      tensors: [...this.tensors.values()],
      params: graph.params.map((p) => ({
        name: p.name,
        shape: p.shape,
        init: p.init,
        trainable: p.trainable,
        layer: p.layer,
      })),
      kernels: this.kernels,
      schedule: this.kernels
        .filter((k) => !this.prepare.includes(k.name))
        .map((k) => ({ kind: "dispatch" as const, kernel: k.name })),
      ...(this.prepare.length ? { prepare: this.prepare } : {}),
      inputs: graph.inputs.map((i) => i.name),
      logits: graph.logits,
    };
    const checked = planSchema.safeParse(plan);
    if (!checked.success) throw internal(`lower produced an invalid plan: ${checked.error.message}`);
    return { plan: checked.data, wgsl: this.wgsl };
  }

  /** Declares an input/activation tensor, refusing one that cannot be bound (AX3001). */
  activation(
    name: string,
    shape: number[],
    role: "input" | "activation",
    span: Node["span"] | undefined,
    aliasOf?: string,
  ) {
    const full = [this.opts.batch, ...shape];
    const bytes = elementCount(full) * this.elementBytes;
    if (bytes > this.opts.maxBindingBytes && aliasOf === undefined) {
      const perExample = elementCount(shape) * this.elementBytes;
      fail(
        "AX3001",
        { tensor: name, bytes, device: `device ${DEVICE}`, limit: this.opts.maxBindingBytes },
        span,
        perExample > this.opts.maxBindingBytes
          ? `\`${name}\` holds ${perExample} bytes per example: even one example does not fit`
          : `\`${name}\` holds ${perExample} bytes per example: a batch of at most ${Math.floor(this.opts.maxBindingBytes / perExample)} fits`,
      );
    }
    this.shapes.set(name, shape);
    this.tensors.set(name, {
      name,
      shape: full,
      dtype: this.dtype,
      role,
      bytes,
      device: DEVICE,
      ...(aliasOf ? { aliasOf } : {}),
    });
    if (aliasOf) this.roots.set(name, aliasOf);
  }

  /** Every parameter becomes a tensor; a conv/dense weight over the limit becomes row parts. */
  lowerParams() {
    const splittable = new Set<string>();
    for (const node of this.graph.nodes) {
      if (node.attrs.op === "conv" || node.attrs.op === "dense") {
        const weight = node.params.find((p) => p.endsWith(".weight"));
        if (weight) splittable.add(weight);
      }
    }
    for (const param of this.graph.params) {
      const bytes = elementCount(param.shape) * this.elementBytes;
      const base = { shape: param.shape, dtype: this.dtype, role: "param" as const, device: DEVICE };
      if (bytes <= this.opts.maxBindingBytes) {
        this.tensors.set(param.name, { name: param.name, bytes, ...base });
        continue;
      }
      const span = this.graph.nodes.find((n) => n.name === param.layer)?.span;
      if (!splittable.has(param.name)) {
        fail(
          "AX3001",
          { tensor: param.name, bytes, device: `device ${DEVICE}`, limit: this.opts.maxBindingBytes },
          span,
        );
      }
      const parts = splitWeightRows(param, this.elementBytes, this.opts.maxBindingBytes, span);
      const rowElements = elementCount(param.shape.slice(1));
      for (const part of parts) {
        const shape = [part.rowCount, ...param.shape.slice(1)];
        this.tensors.set(part.tensor, {
          name: part.tensor,
          bytes: elementCount(shape) * this.elementBytes,
          ...base,
          shape,
          partOf: { tensor: param.name, offset: part.rowBase * rowElements },
        });
      }
      this.weightParts.set(param.name, parts);
    }
  }

  shapeOf(name: string, node: Node): number[] {
    const shape = this.shapes.get(name);
    if (!shape)
      throw internal(`\`${node.name}\` reads \`${name}\`, which is not computed before it`, node.span);
    return shape;
  }

  param(node: Node, suffix: string): string | undefined {
    return node.params.find((p) => p === `${node.name}.${suffix}`);
  }

  emit(node: Node, name: string, source: KernelSource | TrainKernelSource, equivalentFlops?: number) {
    const kernel: PlanKernel = {
      name,
      file: `kernels/${name}.wgsl`,
      layer: node.name,
      op: source.op,
      group: fusedAt(this.fusion, node.name)?.members ?? [node.name],
      device: DEVICE,
      entryPoint: source.entryPoint,
      bindings: source.bindings.map((b, binding) => ({ binding, tensor: b.tensor, access: b.access })),
      workgroupSize: source.workgroupSize,
      dispatch: source.dispatch,
      flops: source.flops,
      ...(equivalentFlops !== undefined ? { equivalentFlops } : {}),
    };
    this.kernels.push(kernel);
    this.wgsl[name] = this.dtype === "f16" ? withF16Storage(source.wgsl) : source.wgsl;
  }

  /** A conv node's forward kernel for one weight part, with the tuned tiles for its shape. */
  convKernel(
    id: KernelIdentity,
    node: Node,
    attrs: Extract<Node["attrs"], { op: "conv" }>,
    part: WeightPart,
    rest: Pick<ConvSpec, "tensors" | "activation">,
  ): TrainKernelSource {
    const shape = this.convGeometry(node, attrs, part);
    return convKernel(id, { ...shape, ...tiles(this.opts, "conv", shape), ...rest });
  }

  /** A conv node's geometry for one weight part: what its forward kernels compute. */
  private convGeometry(
    node: Node,
    attrs: Extract<Node["attrs"], { op: "conv" }>,
    part: WeightPart,
  ): ConvGeometry {
    return {
      ...{ batch: this.opts.batch, input: this.shapeOf(node.inputs[0], node), output: node.shape },
      ...{ kernel: attrs.kernel, stride: attrs.stride, pad: attrs.pad, groups: attrs.groups },
      ...{ outBase: part.rowBase, outCount: part.rowCount },
    };
  }

  /**
   * Lowers one conv weight part with Winograd F(2×2, 3×3) when it applies: the transformed weights U
   * become a `derived` tensor made by a prepare kernel, V and M step-local scratch. False (nothing
   * emitted) when it does not apply or its scratch would not fit a binding: the direct kernel then.
   */
  winogradConv(
    id: KernelIdentity,
    node: Node,
    attrs: Extract<Node["attrs"], { op: "conv" }>,
    part: WeightPart,
    rest: Pick<ConvSpec, "tensors" | "activation">,
  ): boolean {
    if (this.opts.winograd === false || this.dtype !== "f32") return false;
    const scratch = { u: `${part.tensor}.winograd`, v: `${id.name}.winograd_v`, m: `${id.name}.winograd_m` };
    const spec = {
      ...this.convGeometry(node, attrs, part),
      activation: rest.activation,
      tensors: { ...rest.tensors, ...scratch },
    };
    if (!winogradApplies(spec)) return false;
    // Too few 2×2 tiles and the transforms' dispatches cost more than the GEMM saves (measured on
    // lavapipe: alexnet-67's 3×3 maps at batch 1, 4 tiles, ran slower than the direct kernel; at
    // batch 8, 32 tiles, faster).
    const [, oh, ow] = node.shape;
    if (this.opts.batch * Math.ceil(oh / 2) * Math.ceil(ow / 2) < WINOGRAD_MIN_TILES) return false;
    let planned;
    try {
      planned = winogradPlan(id, spec, { maxBindingBytes: this.opts.maxBindingBytes });
    } catch {
      return false; // one image's scratch exceeds a binding: the direct kernel needs none
    }
    for (const s of planned.scratch)
      this.tensors.set(s.name, {
        name: s.name,
        shape: [s.bytes / 4],
        dtype: "f32",
        role: s.lifetime === "weights" ? "derived" : "activation",
        bytes: s.bytes,
        device: DEVICE,
      });
    for (const k of planned.kernels) {
      const gemm = k.stage === "gemm";
      // the direct convolution's FLOPs, spread over the passes' GEMMs, for effective rates
      this.emit(node, k.id.name, k.source, gemm ? planned.directFlops / planned.passes : 0);
      if (k.once) this.prepare.push(k.id.name);
    }
    return true;
  }

  lowerNode(node: Node, name: string) {
    const { attrs } = node;
    const group = fusedAt(this.fusion, node.name)?.members ?? [node.name];
    const id = (kernel: string): KernelIdentity => ({ name: kernel, layer: node.name, group });
    const batch = this.opts.batch;
    const input = node.inputs[0];
    const inShape = () => this.shapeOf(input, node);

    switch (attrs.op) {
      case "softmax_cross_entropy":
        inShape(); // forward mode stops at the logits
        return;
      case "dropout":
      case "flatten": {
        const shape = attrs.op === "flatten" ? [elementCount(inShape())] : inShape();
        this.activation(node.name, shape, "activation", node.span, this.roots.get(input) ?? input);
        return;
      }
    }

    // A fused anchor writes its group's output (the activation's tensor); its own is never stored.
    const fused = fusedAt(this.fusion, node.name);
    const y = fused?.output ?? node.name;
    this.activation(y, node.shape, "activation", node.span);
    const activation = fused?.epilogue?.op;
    switch (attrs.op) {
      case "conv":
      case "dense": {
        const weight = this.param(node, "weight");
        if (!weight) throw internal(`\`${node.name}\` has no weight parameter`, node.span);
        const bias = attrs.bias ? this.param(node, "bias") : undefined;
        const rows = node.shape[0];
        const parts = this.weightParts.get(weight) ?? [{ tensor: weight, rowBase: 0, rowCount: rows }];
        parts.forEach((part, j) => {
          const kernel = parts.length > 1 ? `${name}_p${j}` : name;
          const tensors = { x: input, w: part.tensor, b: bias, y };
          if (
            attrs.op === "conv" &&
            this.winogradConv(id(kernel), node, attrs, part, { tensors, activation })
          )
            return;
          const source =
            attrs.op === "conv"
              ? this.convKernel(id(kernel), node, attrs, part, { tensors, activation })
              : denseKernel(id(kernel), {
                  batch,
                  inFeatures: elementCount(inShape()),
                  outFeatures: rows,
                  groups: attrs.groups,
                  rowBase: part.rowBase,
                  rowCount: part.rowCount,
                  tensors,
                  activation,
                });
          this.emit(node, kernel, source);
        });
        return;
      }
      case "relu":
      case "tanh":
      case "sigmoid":
        return this.emit(
          node,
          name,
          activationKernel(id(name), {
            op: attrs.op,
            shape: [batch, ...inShape()],
            tensors: { x: input, y },
          }),
        );
      case "lrn":
        return this.emit(
          node,
          name,
          lrnKernel(id(name), { batch, shape: inShape(), attrs, tensors: { x: input, y } }),
        );
      case "maxpool":
      case "avgpool": {
        // an LRN + max-pool group reads the LRN's input and evaluates the LRN in its loads (fuse.ts)
        const lrn = this.graph.nodes.find((n) => n.name === fused?.prologue?.node);
        const x = lrn?.inputs[0] ?? input;
        const [, h, w] = this.shapeOf(x, node);
        const [, oh, ow] = node.shape;
        const { pad, window, stride } = attrs;
        // Every window must see at least one real pixel, or a max has nothing to pick and an average divides by 0.
        if (
          pad.top >= window[0] ||
          pad.left >= window[1] ||
          (oh - 1) * stride[0] - pad.top >= h ||
          (ow - 1) * stride[1] - pad.left >= w
        ) {
          throw internal(`a window of \`${node.name}\` lies entirely in the padding`, node.span);
        }
        return this.emit(
          node,
          name,
          poolKernel(id(name), {
            op: attrs.op,
            batch,
            input: this.shapeOf(x, node),
            output: node.shape,
            window,
            stride,
            pad,
            tensors: { x, y },
            ...(lrn?.attrs.op === "lrn" ? { lrn: { layer: lrn.name, attrs: lrn.attrs } } : {}),
          }),
        );
      }
      case "batchnorm": {
        const mean = this.param(node, "running_mean");
        const variance = this.param(node, "running_var");
        if (!mean || !variance) throw internal(`\`${node.name}\` lacks running statistics`, node.span);
        return this.emit(
          node,
          name,
          batchNormKernel(id(name), {
            batch,
            shape: inShape(),
            eps: attrs.eps,
            tensors: {
              x: input,
              mean,
              variance,
              gamma: this.param(node, "weight"),
              beta: this.param(node, "bias"),
              y,
            },
          }),
        );
      }
      case "concat": {
        let offset = 0;
        node.inputs.forEach((x, j) => {
          const shape = this.shapeOf(x, node);
          const kernel = `${name}_in${j}`;
          this.emit(
            node,
            kernel,
            concatKernel(id(kernel), {
              batch,
              input: shape,
              outChannels: node.shape[0],
              channelOffset: offset,
              tensors: { x, y },
            }),
          );
          offset += shape[0];
        });
        return;
      }
      case "softmax":
        return this.emit(
          node,
          name,
          softmaxKernel(id(name), { batch, shape: inShape(), tensors: { x: input, y } }),
        );
    }
  }
}

/**
 * Lowers a checked graph to a forward plan with one WGSL kernel per node (per weight part). A batch
 * whose activations would exceed `maxBindingBytes` is micro-batched (see `microBatchFor` and the plan's
 * `microBatch`): the kernels are lowered for the micro-batch, and the executor runs them once per chunk.
 */
export function lower(graph: Graph, opts: LowerOptions): CompiledPlan {
  const micro = microBatchFor(graph, opts.batch, opts.maxBindingBytes, elementBytes(opts.storage));
  if (micro === opts.batch) return new Lowering(graph, opts).run();
  const compiled = new Lowering(graph, { ...opts, batch: micro }).run();
  return { ...compiled, plan: { ...compiled.plan, batch: opts.batch, microBatch: micro } };
}
