// Atomic training checkpoints.
//
// Layout of a run's checkpoint directory:
//   ckpt-00001200/ weights.safetensors · momentum.safetensors · manifest.json
//   latest         the name of the newest complete checkpoint, one line
//
// Write protocol (one writer per directory): each file goes into a fresh `.tmp-…` directory and is
// fsynced; the manifest, holding the sha256 of the two tensor files, is written last; the directory
// is fsynced and renamed to `ckpt-<step>`, the parent fsynced; then `latest` is replaced by
// temp file + rename, and only then are old checkpoints removed (rename to `.trash-…` first, so a
// half-deleted directory never carries a checkpoint's name). A kill at any instant therefore
// leaves every previously complete checkpoint intact, and `latest` naming a complete one.
//
// Loading trusts nothing: `latest` is tried first, then every other `ckpt-*` newest first; a
// candidate must have a schema-valid manifest, files whose sha256 match it and parse as
// safetensors. A damaged newest checkpoint costs a warning (AX4103), not the run; a checkpoint
// of a different plan is an error (AX4102), since falling back would silently train another model.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { DiagnosticError, diag, type Diagnostic } from "../../compiler/diagnostics.ts";
import { decodeSafetensors, encodeSafetensors, type LoadedTensor, type TensorF32 } from "../safetensors.ts";
import { syncDirectory, writeDurably } from "../durable.ts";

export const CHECKPOINT_FORMAT = "alexc-checkpoint";
export const CHECKPOINT_VERSION = 1;
const WEIGHTS = "weights.safetensors";
const MOMENTUM = "momentum.safetensors";
const MANIFEST = "manifest.json";
const POINTER = "latest";
const NAME = /^ckpt-(\d+)$/;
/** Directories parked by a replacement of the same step; a last resort for the loader. */
const REPLACED = /^\.replaced-(ckpt-(\d+))\.\d+\.\d+$/;

/** What a training run saves. `epoch` counts completed epochs; `stepInEpoch` the steps done in the next. */
export interface CheckpointContent {
  network: string;
  planHash: string;
  seed: number;
  epoch: number;
  stepInEpoch: number;
  globalStep: number;
  /** Plain JSON data, e.g. RngStreams.state(). */
  rng: unknown;
  /** Plain JSON data, e.g. Schedule.state(). */
  schedule: unknown;
  /** A summary for humans and tools (last losses, errors); null for "not measured". */
  metrics: Record<string, number | null>;
  weights: ReadonlyMap<string, TensorF32>;
  momentum: ReadonlyMap<string, TensorF32>;
}

const nat = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const fileEntry = z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: nat });
const manifestSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  version: z.literal(CHECKPOINT_VERSION),
  network: z.string(),
  planHash: z.string(),
  seed: nat,
  epoch: nat,
  stepInEpoch: nat,
  globalStep: nat,
  rng: z.unknown(),
  schedule: z.unknown(),
  metrics: z.record(z.string(), z.number().nullable()),
  createdAt: z.string(),
  files: z.object({ [WEIGHTS]: fileEntry, [MOMENTUM]: fileEntry }),
});
export type Manifest = z.infer<typeof manifestSchema>;

export interface LoadedCheckpoint {
  path: string;
  manifest: Manifest;
  weights: Map<string, LoadedTensor>;
  momentum: Map<string, LoadedTensor>;
  /** AX4103 for each newer checkpoint that was damaged and skipped; the caller reports them. */
  warnings: Diagnostic[];
}

/**
 * The identity a checkpoint is resumable under: a hash of what its weights mean (the network's
 * nodes and parameters, the recipe, the batch), never of how the plan computes them. Kernel tiles
 * come from timing (autotune), arenas from the device's binding limit and source spans from
 * formatting; none changes the model, so none may make a checkpoint unresumable.
 */
export function trainingIdentity(parts: unknown): string {
  const json = JSON.stringify(parts, (key, value) => (key === "span" ? undefined : value));
  return createHash("sha256").update(json).digest("hex").slice(0, 16);
}

export function checkpointName(globalStep: number): string {
  return `ckpt-${String(globalStep).padStart(8, "0")}`;
}

/**
 * Writes `content` as `dir/ckpt-<globalStep>` atomically, points `latest` at it, and keeps it plus
 * the `keep − 1` newest earlier checkpoints. Checkpoints with a higher step are removed too: they
 * belong to a run that was abandoned by resuming from an earlier point.
 */
export function writeCheckpoint(
  dir: string,
  content: CheckpointContent,
  opts: { keep?: number; now?: () => Date } = {},
): { path: string; manifest: Manifest } {
  const keep = opts.keep ?? 2;
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keep must be an integer ≥ 1, got ${keep}`);
  // Check the scalars before any file is written: a bad step would otherwise name a directory.
  const scalars = manifestSchema.pick({
    network: true,
    planHash: true,
    seed: true,
    epoch: true,
    stepInEpoch: true,
    globalStep: true,
    metrics: true,
  });
  const checked = scalars.safeParse(content);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new RangeError(`checkpoint content: \`${issue.path.join(".")}\` ${issue.message}`);
  }
  const name = checkpointName(content.globalStep);
  const final = path.join(dir, name);
  const temp = path.join(dir, `.tmp-${name}.${process.pid}.${++counter}`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    removeStale(dir);
    fs.mkdirSync(temp);
    const files: Record<string, { sha256: string; bytes: number }> = {};
    for (const [file, tensors] of [
      [WEIGHTS, content.weights],
      [MOMENTUM, content.momentum],
    ] as const) {
      const bytes = encodeSafetensors(tensors, { network: content.network }, path.join(final, file));
      writeDurably(path.join(temp, file), bytes);
      files[file] = { sha256: sha256(bytes), bytes: bytes.length };
    }
    const manifest = manifestSchema.parse({
      format: CHECKPOINT_FORMAT,
      version: CHECKPOINT_VERSION,
      network: content.network,
      planHash: content.planHash,
      seed: content.seed,
      epoch: content.epoch,
      stepInEpoch: content.stepInEpoch,
      globalStep: content.globalStep,
      rng: content.rng,
      schedule: content.schedule,
      metrics: content.metrics,
      createdAt: (opts.now?.() ?? new Date()).toISOString(),
      files,
    });
    writeDurably(
      path.join(temp, MANIFEST),
      new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n"),
    );
    syncDirectory(temp);
    // rename(2) cannot replace a non-empty directory: park an existing one of the same step (a
    // damaged one after a fallback, or a rewrite) where the loader can still find it.
    if (fs.existsSync(final))
      fs.renameSync(final, path.join(dir, `.replaced-${name}.${process.pid}.${++counter}`));
    fs.renameSync(temp, final);
    syncDirectory(dir);
    const pointerTemp = path.join(dir, `.${POINTER}.${process.pid}.${++counter}.tmp`);
    writeDurably(pointerTemp, new TextEncoder().encode(name + "\n"));
    fs.renameSync(pointerTemp, path.join(dir, POINTER));
    syncDirectory(dir);
    prune(dir, content.globalStep, keep);
    return { path: final, manifest };
  } catch (error) {
    fs.rmSync(temp, { recursive: true, force: true });
    if (error instanceof DiagnosticError) throw error;
    throw checkpointError(final, `cannot be written (${(error as Error).message})`);
  }
}

/**
 * The newest loadable checkpoint in `dir`, or undefined when there is none at all (a fresh run).
 * Throws AX4102 when checkpoints exist but none is loadable, or the newest valid one was written
 * for a different plan or network.
 */
export function loadLatest(
  dir: string,
  expected: { planHash: string; network?: string },
): LoadedCheckpoint | undefined {
  const candidates = listCandidates(dir);
  if (candidates.length === 0) return undefined;
  const damaged: { path: string; problem: string }[] = [];
  for (const candidate of candidates) {
    const result = tryLoad(candidate);
    if (typeof result === "string") {
      damaged.push({ path: candidate, problem: result });
      continue;
    }
    const { manifest } = result;
    if (manifest.planHash !== expected.planHash) {
      throw checkpointError(
        candidate,
        `was written for training identity ${manifest.planHash}, but this runner's is ${expected.planHash}`,
        "the network, the recipe, the batch size or the image folder's files changed since this checkpoint; resume with the runner and data that wrote it, or start afresh in a new output directory",
      );
    }
    if (expected.network !== undefined && manifest.network !== expected.network) {
      throw checkpointError(
        candidate,
        `holds network \`${manifest.network}\`, expected \`${expected.network}\``,
      );
    }
    const warnings = damaged.map((d) =>
      diag("AX4103", { path: `\`${d.path}\``, problem: d.problem, fallback: `\`${candidate}\`` }, undefined),
    );
    return { path: candidate, ...result, warnings };
  }
  throw checkpointError(
    dir,
    `none of the ${candidates.length} checkpoint(s) can be loaded`,
    "delete the directory to start afresh, or restore it from a backup",
    damaged.map((d) => `${d.path}: ${d.problem}`),
  );
}

/** Complete-looking checkpoint directories, in the order the loader tries them. */
export function listCandidates(dir: string): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const numbered = entries
    .flatMap((e) => {
      const m = NAME.exec(e);
      return m ? [{ name: e, step: Number(m[1]) }] : [];
    })
    .sort((a, b) => b.step - a.step);
  const replaced = entries
    .flatMap((e) => {
      const m = REPLACED.exec(e);
      return m ? [{ name: e, step: Number(m[2]) }] : [];
    })
    .sort((a, b) => b.step - a.step);
  let pointed: string | undefined;
  try {
    pointed = fs.readFileSync(path.join(dir, POINTER), "utf8").trim();
  } catch {
    pointed = undefined; // no checkpoint completed yet, or killed before the first pointer
  }
  const order: string[] = [];
  if (pointed !== undefined && NAME.test(pointed)) order.push(pointed);
  for (const { name } of [...numbered, ...replaced]) if (!order.includes(name)) order.push(name);
  return order.map((name) => path.join(dir, name));
}

function tryLoad(
  dir: string,
): { manifest: Manifest; weights: Map<string, LoadedTensor>; momentum: Map<string, LoadedTensor> } | string {
  if (!fs.existsSync(dir)) return "the directory named by `latest` is missing";
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, MANIFEST), "utf8");
  } catch (error) {
    return `${MANIFEST} cannot be read (${ioReason(error)})`;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return `${MANIFEST} is not valid JSON (${(error as Error).message})`;
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `${MANIFEST} is invalid at \`${issue.path.join(".") || "(root)"}\`: ${issue.message}`;
  }
  const manifest = parsed.data;
  const dirStep = NAME.exec(path.basename(dir))?.[1] ?? REPLACED.exec(path.basename(dir))?.[2];
  if (dirStep !== undefined && Number(dirStep) !== manifest.globalStep) {
    return `${MANIFEST} says step ${manifest.globalStep}, the directory name says ${Number(dirStep)}`;
  }
  const tensors: Map<string, LoadedTensor>[] = [];
  for (const file of [WEIGHTS, MOMENTUM] as const) {
    let bytes: Uint8Array;
    try {
      bytes = fs.readFileSync(path.join(dir, file));
    } catch (error) {
      return `${file} cannot be read (${ioReason(error)})`;
    }
    const want = manifest.files[file];
    if (bytes.length !== want.bytes)
      return `${file} is ${bytes.length} bytes, the manifest says ${want.bytes}`;
    if (sha256(bytes) !== want.sha256) return `${file} does not match its sha256 in the manifest`;
    try {
      tensors.push(decodeSafetensors(bytes, file, "weights").tensors);
    } catch (error) {
      // The reader's AX4005 names the file again; keep only its problem.
      const message = error instanceof DiagnosticError ? error.diagnostics[0].message : String(error);
      return `${file} is not valid safetensors (${message.replace(/^weights file `[^`]*`: /, "")})`;
    }
  }
  return { manifest, weights: tensors[0], momentum: tensors[1] };
}

/** Leftovers of interrupted writes and prunes; with one writer per directory none is in use. */
function removeStale(dir: string): void {
  for (const entry of fs.readdirSync(dir)) {
    if (entry.startsWith(".tmp-ckpt-") || entry.startsWith(".trash-") || /^\.latest\..*\.tmp$/.test(entry)) {
      fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
    }
  }
}

function prune(dir: string, newest: number, keep: number): void {
  const all = fs.readdirSync(dir);
  const steps = all.flatMap((e) => (NAME.test(e) ? [Number(NAME.exec(e)![1])] : [])).sort((a, b) => b - a);
  const kept = new Set([newest, ...steps.filter((s) => s < newest).slice(0, keep - 1)]);
  const doomed = steps.filter((s) => !kept.has(s)).map(checkpointName);
  // Parked replacements are obsolete once a checkpoint of their step is complete again.
  doomed.push(...all.filter((e) => REPLACED.test(e)));
  for (const name of doomed) {
    const trash = path.join(dir, `.trash-${name}.${process.pid}.${++counter}`);
    fs.renameSync(path.join(dir, name), trash);
    fs.rmSync(trash, { recursive: true, force: true });
  }
  if (doomed.length > 0) syncDirectory(dir);
}

let counter = 0;

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function ioReason(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  if (e.code === "ENOENT") return "it is missing";
  if (e.code === "EACCES" || e.code === "EPERM") return "permission denied";
  return e.message ?? String(error);
}

function checkpointError(
  where: string,
  problem: string,
  help?: string,
  notes: string[] = [],
): DiagnosticError {
  return new DiagnosticError(diag("AX4102", { path: `\`${where}\``, problem }, undefined, { help, notes }));
}
