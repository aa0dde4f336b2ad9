// The CLI's commands, each `(context, report) => exit code`. Parsing and checking already happened
// (compiler/cli.ts); a command runs only on a graph without errors.
import { mkdirSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { format } from "prettier";
import { benchCommand } from "./bench-command.ts";
import { UsageError, VERSION, storageOption, type CommandContext } from "./command-context.ts";
import { diag, DiagnosticError, type Diagnostic } from "./diagnostics.ts";
import { dumpGraph } from "./dump.ts";
import { differentiate } from "./autodiff.ts";
import { explainFusion, planFusion } from "./fuse.ts";
import { biasFolds, explainGradFolds, gradFolds } from "./fuse-backward.ts";
import { explainOptimizer } from "./fuse-optimizer.ts";
import type { Graph } from "./graph.ts";
import { formatInfo, networkInfo } from "./info.ts";
import { lower } from "./lower.ts";
import { lowerTraining } from "./lower-train.ts";
import type { CompiledPlan, Plan } from "./plan.ts";
import { inferRunnerSource } from "./emit/infer-runner.ts";
import { trainRunnerSource, type RunnerContext } from "./emit/train-runner.ts";
import { exportOnnx } from "./onnx.ts";
import { replaceFileAtomically } from "../runtime/durable.ts";
import { initParams } from "../runtime/init.ts";
import { readSafetensors, writeSafetensors } from "../runtime/safetensors.ts";

type Command = (ctx: CommandContext, report: (ds: Diagnostic[]) => void) => Promise<number>;

/** WebGPU's default maxStorageBufferBindingSize; what a plan compiled without a device assumes. */
const DEFAULT_MAX_BINDING = 134_217_728;

function intOption(value: string | boolean | undefined, name: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== "string" || !Number.isInteger(n) || n < min)
    throw new UsageError(`--${name} must be an integer ≥ ${min}, got \`${value}\``);
  return n;
}

function stringOption(ctx: CommandContext, name: string, required: string): string {
  const v = ctx.values[name];
  if (typeof v !== "string" || v === "") throw new UsageError(`${required} (--${name})`);
  return v;
}

/** Writes a file atomically: a kill mid-write leaves the old file or none, never half of one. */
function writeAtomic(path: string, data: string | Uint8Array) {
  mkdirSync(dirname(path), { recursive: true });
  replaceFileAtomically(path, data);
}

/** Parameters from --weights or --init (default seed 0), with every name and shape checked. */
function loadWeights(ctx: CommandContext, graph: Graph): Map<string, Float32Array> {
  const file = ctx.values.weights;
  if (file !== undefined && ctx.values.init !== undefined)
    throw new UsageError("give either --weights or --init, not both");
  if (typeof file !== "string") return initParams(graph, intOption(ctx.values.init, "init", 0) ?? 0);
  const tensors = readSafetensors(file, "weights");
  const weights = new Map<string, Float32Array>();
  const problems: Diagnostic[] = [];
  for (const p of graph.params) {
    const t = tensors.get(p.name);
    if (!t)
      problems.push(
        diag(
          "AX4005",
          { file, problem: `missing tensor \`${p.name}\` (shape [${p.shape.join(", ")}])` },
          undefined,
        ),
      );
    else if (t.shape.join(",") !== p.shape.join(","))
      problems.push(
        diag(
          "AX4005",
          {
            file,
            problem: `\`${p.name}\` has shape [${t.shape.join(", ")}], the network needs [${p.shape.join(", ")}]`,
          },
          undefined,
        ),
      );
    else weights.set(p.name, t.data);
  }
  const known = new Set(graph.params.map((p) => p.name));
  const unused = [...tensors.keys()].filter((n) => !known.has(n));
  if (unused.length && problems.length === 0)
    ctx.err(
      `alexc: warning: ${file} has tensors the network does not use: ${unused.slice(0, 5).join(", ")}${unused.length > 5 ? ", …" : ""}`,
    );
  if (problems.length) throw new DiagnosticError(problems);
  return weights;
}

const check: Command = async (ctx) => {
  if (ctx.format === "json") ctx.out(JSON.stringify([]));
  else
    ctx.err(
      `${ctx.file}: ok (${ctx.front.graph!.nodes.length} layers, ${ctx.front.graph!.params.length} parameter tensors)`,
    );
  return 0;
};

const info: Command = async (ctx) => {
  if (ctx.values.memory) return memoryInfo(ctx);
  if (ctx.values.placement !== undefined) return placementInfo(ctx);
  const table = networkInfo(ctx.front.graph!);
  const dispatches = dispatchCounts(ctx);
  if (ctx.format === "json") ctx.out(JSON.stringify({ ...table, dispatches }, null, 2));
  else {
    const { training: t, forward: f } = dispatches;
    ctx.out(
      `${formatInfo(table)}\n` +
        `kernel dispatches per training step (batch ${t.batch}${t.microSteps > 1 ? `, ${t.microSteps} micro-steps` : ""}): ` +
        `${t.unfused} unfused, ${t.fused} fused; forward at batch ${f.batch}: ${f.unfused} unfused, ${f.fused} fused ` +
        `(alexc compile --explain-fusion lists the groups)` +
        (f.fusedWinograd !== f.fused || t.fusedWinograd !== t.fused
          ? `; with Winograd 3×3 convolutions (the default): ${t.fusedWinograd} per training step, ${f.fusedWinograd} per forward run`
          : ""),
    );
  }
  return 0;
};

/** Kernel dispatches per training step and per forward run, without and with fusion (fuse.ts). */
function dispatchCounts(ctx: CommandContext) {
  const graph = ctx.front.graph!;
  const recipe = ctx.front.recipe!;
  const common = { maxBindingBytes: DEFAULT_MAX_BINDING, source: ctx.file, compilerVersion: VERSION };
  const count = (plan: Plan) =>
    (plan.schedule.filter((s) => s.kind === "dispatch").length * plan.batch) /
    (plan.microBatch ?? plan.batch);
  // Fusion compared alike: direct convolutions on both sides; Winograd's extra stages counted apart.
  const train = (fuse: boolean, winograd = false) =>
    lowerTraining(graph, {
      ...common,
      fuse,
      winograd,
      batch: recipe.batch,
      momentum: recipe.momentum,
      weightDecay: recipe.weightDecay,
      activeDropout: recipe.dropout,
    }).plan;
  const [fusedTrain, unfusedTrain] = [train(true), train(false)];
  const forward = (fuse: boolean, winograd = false) =>
    lower(graph, { ...common, fuse, winograd, batch: 1 }).plan;
  return {
    training: {
      batch: recipe.batch,
      microSteps: recipe.batch / (fusedTrain.microBatch ?? recipe.batch),
      unfused: count(unfusedTrain),
      fused: count(fusedTrain),
      fusedWinograd: count(train(true, true)),
    },
    forward: {
      batch: 1,
      unfused: count(forward(false)),
      fused: count(forward(true)),
      fusedWinograd: count(forward(true, true)),
    },
  };
}

/** `info --placement`: one strategy's per-device figures, or all three side by side. */
async function placementInfo(ctx: CommandContext): Promise<number> {
  const { placeAll, placeNetwork, STRATEGIES } = await import("./place.ts");
  const { formatPlacement, formatPlacements } = await import("./place-report.ts");
  const which = ctx.values.placement;
  const batch = intOption(ctx.values.batch, "batch") ?? ctx.front.recipe!.batch;
  if (which === "all") {
    const all = placeAll(ctx.front.graph!, { batch });
    ctx.out(
      ctx.format === "json" ? JSON.stringify(all, null, 2) : formatPlacements(all.placements, all.skipped),
    );
    return 0;
  }
  const strategy = STRATEGIES.find((s) => s === which);
  if (!strategy) throw new UsageError(`--placement must be model, data, hybrid or all, got \`${which}\``);
  const p = placeNetwork(ctx.front.graph!, strategy, { batch });
  ctx.out(ctx.format === "json" ? JSON.stringify(p, null, 2) : formatPlacement(p));
  return 0;
}

/** The arenas of `info --memory` by default: 2 GiB, within what desktop adapters and lavapipe (4 GiB) allow. */
const DEFAULT_MAX_BUFFER = 2_147_483_648;

/** `8589934592`, `8GiB`, `512MiB` → bytes. */
function bytesOption(value: string | boolean | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const m = typeof value === "string" ? /^(\d+)\s*(KiB|MiB|GiB)?$/.exec(value) : null;
  const n = m ? Number(m[1]) * 2 ** (10 * ["", "KiB", "MiB", "GiB"].indexOf(m[2] ?? "")) : NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`--${name} must be a number of bytes (or N KiB, MiB, GiB), got \`${value}\``);
  return n;
}

/** `info --memory`: per device, the training plan's memory (compiler/memory.ts). */
async function memoryInfo(ctx: CommandContext): Promise<number> {
  const { formatMemory, memoryReport, trainingPlanFor } = await import("./memory-report.ts");
  const placement = ctx.values.placement;
  if (placement !== undefined && placement !== "model" && placement !== "data" && placement !== "hybrid")
    throw new UsageError(`--memory takes --placement model, data or hybrid, got \`${placement}\``);
  const batch = intOption(ctx.values.batch, "batch") ?? ctx.front.recipe!.batch;
  const maxBindingBytes =
    intOption(ctx.values["max-binding-bytes"], "max-binding-bytes") ?? DEFAULT_MAX_BINDING;
  const maxBufferBytes =
    bytesOption(ctx.values["max-buffer-bytes"], "max-buffer-bytes") ??
    Math.max(DEFAULT_MAX_BUFFER, maxBindingBytes);
  const deviceMemoryBytes = bytesOption(ctx.values["device-memory"], "device-memory");
  const plan = trainingPlanFor(ctx.front.graph!, ctx.front.recipe!, {
    ...{ batch, placement, maxBindingBytes },
    ...{ source: ctx.file, version: VERSION },
  });
  const report = memoryReport(plan, { maxBindingBytes, maxBufferBytes, deviceMemoryBytes });
  ctx.out(ctx.format === "json" ? JSON.stringify(report, null, 2) : formatMemory(report));
  return 0;
}

/** Writes a plan's plan.json and kernels/*.wgsl under `dir`. */
function writePlan(dir: string, compiled: CompiledPlan) {
  for (const kernel of compiled.plan.kernels) writeAtomic(join(dir, kernel.file), compiled.wgsl[kernel.name]);
  writeAtomic(join(dir, "plan.json"), JSON.stringify(compiled.plan, null, 2) + "\n");
}

const alexcRoot = resolve(fileURLToPath(new URL("..", import.meta.url)));

const compile: Command = async (ctx) => {
  const graph = ctx.front.graph!;
  const recipe = ctx.front.recipe!;
  if (ctx.values["dump-ir"]) ctx.out(dumpGraph(graph));
  const dir = ctx.values.output;
  const maxBindingBytes =
    intOption(ctx.values["max-binding-bytes"], "max-binding-bytes") ?? DEFAULT_MAX_BINDING;
  const common = { maxBindingBytes, source: ctx.file, compilerVersion: VERSION };
  // The training plan at the recipe's batch: forward, loss, backward and the paper's update. A batch
  // whose activations exceed a binding (AlexNet's conv1 at 128 under 128 MiB) is micro-batched.
  const lowerRecipe = () =>
    lowerTraining(graph, {
      ...common,
      batch: recipe.batch,
      momentum: recipe.momentum,
      weightDecay: recipe.weightDecay,
      activeDropout: recipe.dropout,
    });
  if (ctx.values["explain-fusion"]) {
    const tg = differentiate(graph, { activeDropout: recipe.dropout });
    ctx.out(
      [
        explainFusion(planFusion(graph)),
        explainGradFolds(gradFolds(tg), biasFolds(tg)),
        explainOptimizer(lowerRecipe().plan),
      ].join("\n\n"),
    );
  }
  if (typeof dir !== "string") {
    if (!ctx.values["dump-ir"] && !ctx.values["explain-fusion"])
      throw new UsageError("compile needs -o DIR (or --dump-ir, --explain-fusion)");
    return 0;
  }
  // The inference plan (what `alexc run` and infer.ts execute) at --batch, default 1.
  const batch = intOption(ctx.values.batch, "batch") ?? 1;
  const forward = lower(graph, { ...common, batch, storage: storageOption(ctx.values.storage) });
  writePlan(dir, forward);
  const training = lowerRecipe();
  writePlan(join(dir, "train"), training);
  writeAtomic(join(dir, "graph.json"), JSON.stringify(graph, null, 2) + "\n");

  const importRoot = relative(resolve(dir), alexcRoot).split(sep).join("/") || ".";
  const runnerContext: RunnerContext = {
    graph,
    recipe,
    data: ctx.front.data!,
    source: ctx.file,
    alexcRoot: importRoot.startsWith(".") ? importRoot : `./${importRoot}`,
    regenerate: `npm run alexc -- compile ${ctx.file} -o ${dir}`,
    // The Node pinned by `npm run setup`; any Node >= 22.18 on PATH works as plain `node` too.
    runCommand: `node_modules/.bin/node ${join(dir, "train.ts")}`,
    version: VERSION,
  };
  const typescript = (source: string) => format(source, { parser: "typescript", printWidth: 110 });
  writeAtomic(join(dir, "train.ts"), await typescript(trainRunnerSource(runnerContext)));
  writeAtomic(join(dir, "infer.ts"), await typescript(inferRunnerSource(runnerContext)));
  ctx.err(
    `wrote ${dir}: plan.json (${forward.plan.kernels.length} kernels, batch ${batch}), ` +
      `train/plan.json (${training.plan.kernels.length} kernels, batch ${recipe.batch}` +
      (training.plan.microBatch ? ` in micro-batches of ${training.plan.microBatch}), ` : "), ") +
      "graph.json, train.ts, infer.ts",
  );
  return 0;
};

const run: Command = async (ctx) => {
  const graph = ctx.front.graph!;
  const inputFile = stringOption(ctx, "input", "run needs an input tensor file");
  const outFile = stringOption(ctx, "output", "run needs an output file");
  const inputs = readSafetensors(inputFile, "input");
  const graphInput = graph.inputs[0];
  const x = inputs.get("input") ?? inputs.get(graphInput.name);
  if (!x)
    throw new DiagnosticError(
      diag(
        "AX4006",
        { file: inputFile, problem: `no tensor named \`input\` (or \`${graphInput.name}\`)` },
        undefined,
      ),
    );
  const want = graphInput.shape.join(",");
  if (x.shape.length !== graphInput.shape.length + 1 || x.shape.slice(1).join(",") !== want)
    throw new DiagnosticError(
      diag(
        "AX4006",
        {
          file: inputFile,
          problem: `\`input\` has shape [${x.shape.join(", ")}], expected [N, ${graphInput.shape.join(", ")}]`,
        },
        undefined,
      ),
    );
  const batch = x.shape[0];
  const requested = intOption(ctx.values.batch, "batch");
  if (requested !== undefined && requested !== batch)
    throw new UsageError(`--batch ${requested} but the input holds ${batch} examples`);
  const weights = loadWeights(ctx, graph);
  // The runtime is loaded only here, so that check/info/compile never start Dawn.
  const { openDevices, closeDevices } = await import("../runtime/devices.ts");
  const { createExecutor } = await import("../runtime/executor.ts");
  const t0 = performance.now();
  const [dev] = await openDevices({ count: 1 });
  let logits: Float32Array;
  try {
    ctx.err(`running on ${dev.label}`);
    const compiled = lower(graph, {
      batch,
      maxBindingBytes: dev.maxBindingBytes,
      source: ctx.file,
      compilerVersion: VERSION,
      storage: storageOption(ctx.values.storage),
    });
    const executor = await createExecutor(dev, compiled);
    executor.uploadParams(weights, typeof ctx.values.weights === "string" ? ctx.values.weights : undefined);
    executor.writeInput(graphInput.name, x.data, inputFile);
    logits = (await executor.run()).logits;
  } finally {
    closeDevices([dev]);
  }
  writeSafetensors(outFile, new Map([["logits", { shape: [batch, graph.classes], data: logits }]]));
  ctx.err(
    `wrote ${outFile}: logits [${batch}, ${graph.classes}] in ${((performance.now() - t0) / 1000).toFixed(2)} s`,
  );
  return 0;
};

const exportOnnxCommand: Command = async (ctx) => {
  const graph = ctx.front.graph!;
  const outFile = stringOption(ctx, "output", "export-onnx needs an output file");
  const model = exportOnnx(graph, loadWeights(ctx, graph));
  writeAtomic(outFile, model);
  ctx.err(`wrote ${outFile} (${(model.byteLength / 1e6).toFixed(1)} MB, opset 13)`);
  return 0;
};

export const commands: Record<string, Command> = {
  check,
  info,
  compile,
  run,
  "export-onnx": exportOnnxCommand,
  bench: benchCommand,
};
