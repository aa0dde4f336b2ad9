// The command-line section of the generated train.ts (train-runner.ts): its --help text, the
// options it takes and their parsing, with defaults from the RECIPE and DATA constants the program
// bakes in before this section.
import type { DataSpec } from "../check/recipe.ts";
import { templateText } from "./names.ts";
import type { RunnerContext } from "./train-runner.ts";

export function optionsSource(ctx: RunnerContext): string {
  const { graph, data } = ctx;
  return `const HELP = \`Trains ${graph.name} on ${data.dataset === "image_folder" ? "an image folder" : "Fashion-MNIST"} with the recipe of ${templateText(ctx.source)}.

usage: ${templateText(ctx.runCommand)} [options]

${dataHelp(data)}
  --epochs N             epochs to train (default \${RECIPE.epochs})
  --batch N              examples per step (default \${RECIPE.batch})
  --lr X                 initial learning rate (default \${RECIPE.lr})
  --seed N               seed for initial weights, data order, augmentation and dropout (default \${RECIPE.seed})
  --checkpoint-dir DIR   checkpoints, metrics.jsonl and curves.svg (default: runs/${graph.name} under this runner's folder)
  --resume               continue from the newest checkpoint in --checkpoint-dir, exactly where it stopped
  --devices N            WebGPU devices to use: 1 or 2 (default \${RECIPE.devices})
  --placement S          with 2 devices: model (the paper's towers, one per device), data (half the
                         batch each, gradients averaged) or hybrid (convolutions data-parallel, fully
                         connected layers model-parallel: Krizhevsky 2014) (default \${RECIPE.placement})
  --eval-every N         evaluate on the validation set every N epochs (default \${RECIPE.evalEvery})
  --checkpoint-every N   also checkpoint every N steps within an epoch (default: at the end of each epoch)
  --limit N              train on ${data.dataset === "image_folder" ? "a fixed choice of N training images, the same in every run," : "the first N training examples only"} (quick trials)
  --max-steps N          stop after N steps in all (quick trials)
  --autotune             measure the convolution kernels' tile candidates on this adapter on first use
                         (cached per adapter under ~/.cache/alexc/tuning) and run the fastest
  --workers N            image folders: loader threads decoding ahead of the step (default 2)
  --reuse-memory         tensors whose lifetimes do not overlap share device memory (the compiler's
                         memory plan, per device: the liveness peak instead of the sum of all
                         tensors); a NaN then names no layer
  -h, --help             this help
\`;

interface Options {
  data: string;
  epochs: number;
  batch: number;
  lr: number;
  seed: number;
  checkpointDir: string;
  resume: boolean;
  devices: number;
  placement: string;
  evalEvery: number;
  checkpointEvery: number;
  limit: number;
  maxSteps: number;
  workers: number;
  reuseMemory: boolean;
  autotune: boolean;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: "string" },
      epochs: { type: "string" },
      batch: { type: "string" },
      lr: { type: "string" },
      seed: { type: "string" },
      "checkpoint-dir": { type: "string" },
      resume: { type: "boolean" },
      devices: { type: "string" },
      placement: { type: "string" },
      "eval-every": { type: "string" },
      "checkpoint-every": { type: "string" },
      limit: { type: "string" },
      "max-steps": { type: "string" },
      workers: { type: "string" },
      "reuse-memory": { type: "boolean" },
      autotune: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return undefined;
  const int = (name: string, value: string | undefined, fallback: number, min = 1) => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new UsageError(\`--\${name} must be an integer ≥ \${min}, got \\\`\${value}\\\`\`);
    return n;
  };
  const lr = values.lr === undefined ? RECIPE.lr : Number(values.lr);
  if (!(lr > 0) || !Number.isFinite(lr)) throw new UsageError(\`--lr must be a positive number, got \\\`\${values.lr}\\\`\`);
  const placement = values.placement ?? RECIPE.placement;
  if (!["model", "data", "hybrid"].includes(placement))
    throw new UsageError(\`--placement must be model, data or hybrid, got \\\`\${placement}\\\`\`);
  return {
    data: values.data ?? DATA.dir ?? ${data.dataset === "image_folder" ? '""' : "DEFAULT_FASHION_MNIST_DIR"},
    epochs: int("epochs", values.epochs, RECIPE.epochs),
    batch: int("batch", values.batch, RECIPE.batch),
    lr,
    seed: int("seed", values.seed, RECIPE.seed, 0),
    checkpointDir: values["checkpoint-dir"] ?? join(HERE, "runs", NETWORK.name),
    resume: values.resume ?? false,
    devices: int("devices", values.devices, RECIPE.devices),
    placement: values.placement ?? RECIPE.placement,
    evalEvery: int("eval-every", values["eval-every"], RECIPE.evalEvery),
    checkpointEvery: int("checkpoint-every", values["checkpoint-every"], 0, 0),
    limit: int("limit", values.limit, 0, 0),
    maxSteps: int("max-steps", values["max-steps"], 0, 0),
    workers: int("workers", values.workers, 2),
    reuseMemory: values["reuse-memory"] ?? false,
    autotune: values.autotune ?? false,
  };
}`;
}

function dataHelp(data: DataSpec): string {
  return data.dataset === "image_folder"
    ? "  --data DIR             an image folder: DIR/train/<class>/*.{JPEG,jpg,png} and DIR/val/<class>/… (default: the data section's dir)"
    : "  --data DIR             Fashion-MNIST IDX files (default: the data section's dir, else ${DEFAULT_FASHION_MNIST_DIR})";
}
