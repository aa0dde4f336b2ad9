// The `alexc` command line. Exit codes: 0 clean, 1 user errors, 2 bad usage, 70 internal error.
import { readFileSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { DiagnosticError, hasErrors, type Diagnostic } from "./diagnostics.ts";
import { compileSource } from "./frontend.ts";
import { UsageError, VERSION } from "./command-context.ts";
import { diagnosticsToJson, renderDiagnostics, summary } from "./render.ts";
import { commands } from "./commands.ts";

const usage = `alexc ${VERSION} — a model-graph compiler for AlexNet-style networks

usage: alexc <command> FILE [options]

commands:
  check FILE                     parse and check; diagnostics only
  lint FILE... [--fix] [--format text|json|sarif] [--max-warnings N] [--config alexc.json]
                                 everything check reports plus lint warnings (severities in alexc.json);
                                 --fix applies the safe fixes and formats; exit 1 on errors
  explain CODE | --list          the long explanation of a diagnostic code or lint rule
  info FILE                      per-layer table: per-tower output shape, parameters, multiply-adds
  info FILE --placement model|data|hybrid|all [--batch N]
                                 per device of two: FLOPs, parameter and activation bytes, transfers
                                 per training step (default batch: the recipe's)
  info FILE --memory [--batch N] [--placement model|data|hybrid] [--device-memory BYTES]
                                 per device: the training plan's memory peak, the no-reuse total and
                                 the liveness lower bound, arenas and in-place tensors
  devices                        the WebGPU adapters: limits and features alexc uses
  compile FILE --dump-ir         print the checked graph, one binding per line
  compile FILE --explain-fusion  the fused kernel groups and why each one ends
  compile FILE -o DIR            write the plans and runners (no GPU needed): DIR/plan.json + kernels/
                                 (inference), DIR/train/ (training plan), graph.json, train.ts, infer.ts
  run FILE --input X.safetensors -o Y.safetensors [--weights W.safetensors | --init SEED]
                                 run the forward pass on a WebGPU device; writes \`logits\`
  export-onnx FILE -o model.onnx [--weights W.safetensors | --init SEED]
                                 the forward graph as ONNX (opset 13) with weights
  bench FILE [--batch N] [--mode forward|train] [--placement model|data|hybrid] [--iters K]
             [--warmup W] [--init SEED] [--autotune] [--format json]
                                 time K steps on a WebGPU device after W warm-up steps (default 5, 2):
                                 median ms per step, images/s, per-kernel wall times, GFLOP/s per
                                 kernel class against alexc's 1024³ GEMM, memory per device;
                                 --autotune: convolution tiles measured on this adapter (cached)
  graph FILE [-o OUT.svg|OUT.dot] [--format svg|dot]
                                 the architecture as the paper's Figure 2: towers side by side,
                                 per-tower output shapes, parameters, cross-tower edges marked
  lsp [--stdio]                  the language server (LSP over stdin/stdout) for editors
  fmt [--check] FILE… | --stdin  rewrite .net files in canonical form, in place; --check lists the
                                 files that are not and exits 1; --stdin formats stdin to stdout

options:
  --format text|json             output format for diagnostics, info, check and bench (default text)
  --batch N                      batch size for compile/run/bench (default: the input's, else 1)
  --storage f32|f16              compile/run/bench --mode forward: how activations and weights are
                                 stored; f16 halves their memory, arithmetic stays f32; needs the
                                 adapter feature shader-f16 (default f32)
  --max-binding-bytes N          compile, info --memory: the device's maxStorageBufferBindingSize
                                 (default 134217728)
  --max-buffer-bytes N           info --memory: the device's maxBufferSize, the largest arena (default 2GiB)
  --device-memory BYTES          info --memory: the memory budget per device (e.g. 8GiB); a plan that
                                 needs more fails with AX3007
  -h, --help                     this help
  -v, --version                  the version
`;

const options = {
  format: { type: "string" },
  output: { type: "string", short: "o" },
  "dump-ir": { type: "boolean" },
  "explain-fusion": { type: "boolean" },
  autotune: { type: "boolean" },
  placement: { type: "string" },
  batch: { type: "string" },
  weights: { type: "string" },
  init: { type: "string" },
  input: { type: "string" },
  "max-binding-bytes": { type: "string" },
  memory: { type: "boolean" },
  "max-buffer-bytes": { type: "string" },
  "device-memory": { type: "string" },
  mode: { type: "string" },
  storage: { type: "string" },
  iters: { type: "string" },
  warmup: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
} satisfies ParseArgsConfig["options"];

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const processIo: CliIo = {
  out: (text) => void process.stdout.write(text + "\n"),
  err: (text) => void process.stderr.write(text + "\n"),
};

/**
 * Commands with their own argument syntax (several files, stdio servers): each parses its own
 * arguments, loaded only when called. Exit codes as for every command.
 */
const ownArgumentCommands: Record<string, () => Promise<(args: string[], io: CliIo) => Promise<number>>> = {
  graph: async () => (await import("./graph-command.ts")).graphCommand,
  lsp: async () => (await import("./lsp/command.ts")).lspCommand,
  lint: async () => (await import("./lint/command.ts")).lintCommand,
  explain: async () => (await import("./lint/command.ts")).explainCommand,
  fmt: async () => (await import("./fmt-command.ts")).fmtCommand,
};

export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const own = ownArgumentCommands[argv[0] ?? ""];
  if (own) return (await own())(argv.slice(1), io);
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    io.err(`alexc: ${(e as Error).message}\n\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    io.out(VERSION);
    return 0;
  }
  const [command, file, ...extra] = positionals;
  if (values.help || !command) {
    (command || values.help ? io.out : io.err)(usage);
    return values.help ? 0 : 2;
  }
  if (command === "devices") {
    if (file || ((values.format ?? "text") !== "text" && values.format !== "json")) {
      io.err(`alexc: usage: alexc devices [--format text|json]\n\n${usage}`);
      return 2;
    }
    const { devicesCommand } = await import("./devices-command.ts");
    return devicesCommand(values.format === "json" ? "json" : "text", io.out, io.err);
  }
  const run = commands[command];
  if (!run) {
    io.err(`alexc: unknown command \`${command}\`\n\n${usage}`);
    return 2;
  }
  if (!file || extra.length) {
    io.err(`alexc: \`${command}\` takes exactly one FILE\n\n${usage}`);
    return 2;
  }
  const format = values.format ?? "text";
  if (format !== "text" && format !== "json") {
    io.err(`alexc: --format must be text or json, got \`${format}\``);
    return 2;
  }
  let source: string;
  try {
    source = readFileSync(file, "utf8");
  } catch (e) {
    io.err(`alexc: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return 1;
  }
  const front = compileSource(source);
  const report = (ds: Diagnostic[]) => {
    if (ds.length === 0) return;
    if (format === "json") io.out(JSON.stringify(diagnosticsToJson(ds, file), null, 2));
    else io.err(`${renderDiagnostics(ds, file, source, { color: process.stderr.isTTY })}\n\n${summary(ds)}`);
  };
  try {
    if (hasErrors(front.diagnostics) || !front.graph) {
      report(front.diagnostics);
      return 1;
    }
    if (command !== "check") report(front.diagnostics); // warnings
    return await run({ file, source, front, values, format, out: io.out, err: io.err }, report);
  } catch (e) {
    if (e instanceof DiagnosticError) {
      report(e.diagnostics);
      return 1;
    }
    if (e instanceof UsageError) {
      io.err(`alexc: ${e.message}`);
      return 2;
    }
    io.err(`alexc: internal error (this is a bug in alexc, please report it):\n${(e as Error).stack ?? e}`);
    return 70;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
