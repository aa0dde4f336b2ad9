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
//    per parameter upload), unless `winograd: false` (placed plans); a training plan runs the weight
//    transforms in its step (lower-train-winograd.ts) and evaluation schedule (lower-train.ts);
//  - with `storage: "f16"` every tensor is f16 in memory and each kernel is its f32 form rewritten
//    to load and store f16 (wgsl/f16-storage.ts).
// A batch whose activations exceed `maxBindingBytes` is micro-batched (`microBatchFor`, the plan's
// `microBatch`): the kernels are lowered for a divisor of the batch and the runtime runs them per chunk.
// Buffers are one per plan tensor; the memory planner (arenas, reuse) comes later.
import { DiagnosticError, diag } from "./diagnostics.ts";
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
import { denseKernel } from "./wgsl/dense.ts";
import { lrnKernel } from "./wgsl/lrn.ts";
import { poolKernel } from "./wgsl/pool.ts";
import { softmaxKernel } from "./wgsl/softmax.ts";
import { withF16Storage } from "./wgsl/f16-storage.ts";
import { type WeightPart, microBatchFor } from "./weight-split.ts";
import { type ConvContext, convKernels } from "./lower-conv.ts";
import { type TensorStorage, activationTensor, elementBytes, paramTensors } from "./lower-tensors.ts";

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

/** `stem.conv` → `stem_conv`: kernel names must match /^[a-z][a-z0-9_]*$/ (the `k` prefix starts it). */
function sanitize(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_]/g, "_");
}

function internal(message: string, span?: Node["span"]): DiagnosticError {
  return new DiagnosticError(diag("AX9001", { message }, span));
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
  readonly storage: TensorStorage;

  constructor(graph: Graph, opts: LowerOptions) {
    this.graph = graph;
    this.opts = opts;
    this.storage = {
      batch: opts.batch,
      maxBindingBytes: opts.maxBindingBytes,
      dtype: opts.storage ?? "f32",
      elementBytes: elementBytes(opts.storage),
      device: DEVICE,
    };
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
    const tensor = activationTensor(this.storage, name, shape, role, span, aliasOf);
    this.shapes.set(name, shape);
    this.tensors.set(name, tensor);
    if (aliasOf) this.roots.set(name, aliasOf);
  }

  /** Every parameter becomes a tensor; a conv/dense weight over the limit becomes row parts. */
  lowerParams() {
    const params = paramTensors(this.graph, this.storage);
    for (const tensor of params.tensors) this.tensors.set(tensor.name, tensor);
    for (const [weight, parts] of params.weightParts) this.weightParts.set(weight, parts);
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
    this.wgsl[name] = this.storage.dtype === "f16" ? withF16Storage(source.wgsl) : source.wgsl;
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
          if (attrs.op === "conv") {
            const c: ConvContext = {
              batch,
              maxBindingBytes: this.opts.maxBindingBytes,
              winograd: this.opts.winograd !== false && this.storage.dtype === "f32",
              input: inShape(),
              tiles: (kind, shape) => tiles(this.opts, kind, shape),
            };
            const conv = convKernels(c, id(kernel), node, attrs, part, { tensors, activation });
            for (const t of conv.tensors) this.tensors.set(t.name, { ...t, device: DEVICE });
            for (const k of conv.kernels) {
              this.emit(node, k.name, k.source, k.equivalentFlops);
              if (k.once) this.prepare.push(k.name);
            }
            return;
          }
          const source = denseKernel(id(kernel), {
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
