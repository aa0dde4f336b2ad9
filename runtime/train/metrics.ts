// Per-epoch metrics as JSON lines (one object per epoch), and top-k error counting.
//
// Each line is appended and fsynced before the epoch's checkpoint is written, so after a kill the
// file holds at least every epoch the newest checkpoint has. On resume the file is cut back to the
// resumed epoch, dropping lines of epochs that will be trained again (and a line torn by the kill),
// so no epoch ever appears twice.
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { DiagnosticError, diag } from "../../compiler/diagnostics.ts";
import { syncDirectory } from "../durable.ts";

/** Errors are fractions in [0, 1]. Non-finite train values are stored as null and read back as NaN. */
export interface EpochRecord {
  /** 1 for the first epoch. */
  epoch: number;
  trainLoss: number;
  trainTop1: number;
  trainTop5: number;
  /** null when the epoch was not evaluated on the validation set. */
  valTop1: number | null;
  valTop5: number | null;
  lr: number;
  /** Wall-clock seconds of the epoch, evaluation included. */
  seconds: number;
}

const orNaN = z
  .number()
  .nullable()
  .transform((v) => v ?? NaN);
const recordSchema = z.object({
  epoch: z.number().int().min(1),
  trainLoss: orNaN,
  trainTop1: orNaN,
  trainTop5: orNaN,
  valTop1: z.number().nullable(),
  valTop5: z.number().nullable(),
  lr: orNaN,
  seconds: orNaN,
});

/** Reads a metrics file; a missing file is empty, a torn last line is ignored. */
export function readMetrics(file: string): EpochRecord[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw metricsError(file, `cannot be read (${(error as Error).message})`);
  }
  const lines = text.split("\n");
  lines.pop(); // the text after the last newline: empty, or a line a kill cut short
  const records: EpochRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let parsed: ReturnType<typeof recordSchema.safeParse>;
    try {
      parsed = recordSchema.safeParse(JSON.parse(line));
    } catch {
      throw metricsError(file, `line ${i + 1} is not valid JSON`);
    }
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw metricsError(file, `line ${i + 1}: \`${issue.path.join(".")}\` ${issue.message}`);
    }
    const previous = records.at(-1);
    if (previous !== undefined && parsed.data.epoch <= previous.epoch) {
      throw metricsError(file, `line ${i + 1} is epoch ${parsed.data.epoch}, after epoch ${previous.epoch}`);
    }
    records.push(parsed.data);
  });
  return records;
}

export class MetricsWriter {
  readonly file: string;
  /** Every record in the file: those kept on opening, then those appended. */
  readonly records: EpochRecord[];
  private fd: number | undefined;

  private constructor(file: string, records: EpochRecord[], fd: number) {
    this.file = file;
    this.records = records;
    this.fd = fd;
  }

  /**
   * Opens `file` for a run that has completed `resumedEpoch` epochs (0 for a fresh run): lines of
   * later epochs are removed first, atomically (temp file + rename), so a kill while opening
   * leaves either the old file or the cut one.
   */
  static open(file: string, resumedEpoch: number): MetricsWriter {
    if (!Number.isInteger(resumedEpoch) || resumedEpoch < 0) {
      throw new RangeError(`resumedEpoch must be an integer ≥ 0, got ${resumedEpoch}`);
    }
    const kept = readMetrics(file).filter((r) => r.epoch <= resumedEpoch);
    const dir = path.dirname(path.resolve(file));
    const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
    try {
      fs.mkdirSync(dir, { recursive: true });
      const fd = fs.openSync(temp, "w", 0o644);
      try {
        fs.writeFileSync(fd, kept.map(serialise).join(""));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(temp, file);
      syncDirectory(dir);
      return new MetricsWriter(file, kept, fs.openSync(file, "a"));
    } catch (error) {
      fs.rmSync(temp, { force: true });
      throw metricsError(file, `cannot be written (${(error as Error).message})`);
    }
  }

  /** Appends one epoch's line and fsyncs it; epochs must increase. */
  append(record: EpochRecord): void {
    if (this.fd === undefined) throw new Error("MetricsWriter: append after close");
    const previous = this.records.at(-1);
    if (previous !== undefined && record.epoch <= previous.epoch) {
      throw new RangeError(`metrics: epoch ${record.epoch} appended after epoch ${previous.epoch}`);
    }
    try {
      fs.writeSync(this.fd, serialise(record));
      fs.fsyncSync(this.fd);
    } catch (error) {
      throw metricsError(this.file, `cannot be written (${(error as Error).message})`);
    }
    this.records.push({ ...record });
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** One line, fields in a fixed order; non-finite numbers (which JSON cannot hold) become null. */
function serialise(r: EpochRecord): string {
  const finite = (v: number | null) => (v !== null && Number.isFinite(v) ? v : null);
  return (
    JSON.stringify({
      epoch: r.epoch,
      trainLoss: finite(r.trainLoss),
      trainTop1: finite(r.trainTop1),
      trainTop5: finite(r.trainTop5),
      valTop1: finite(r.valTop1),
      valTop5: finite(r.valTop5),
      lr: finite(r.lr),
      seconds: finite(r.seconds),
    }) + "\n"
  );
}

export interface TopKResult {
  /** The k values asked for, in order. */
  k: number[];
  /** Examples whose label is not among the k highest logits, per k. */
  wrong: number[];
  total: number;
  /** wrong / total per k (NaN for an empty batch). */
  rate: number[];
}

/**
 * Top-k errors of a batch: `logits` is batch × classes, row-major. The label's rank is the number of
 * logits above it plus the equal ones at lower indices (a stable sort's order), so ties cannot
 * make a constant output look right; a NaN label logit is always wrong. Counts add across batches.
 */
export function topKErrors(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
  ks: readonly number[] = [1, 5],
): TopKResult {
  const n = labels.length;
  if (logits.length !== n * classes) {
    throw new RangeError(`topKErrors: ${logits.length} logits for ${n} labels × ${classes} classes`);
  }
  const wrong = ks.map(() => 0);
  for (let b = 0; b < n; b++) {
    const label = labels[b];
    if (!Number.isInteger(label) || label < 0 || label >= classes) {
      throw new RangeError(`topKErrors: label ${b} is ${label}, outside 0..${classes - 1}`);
    }
    const row = b * classes;
    const x = logits[row + label];
    let rank = 0;
    if (Number.isNaN(x)) rank = Infinity;
    else {
      for (let c = 0; c < classes; c++) {
        const y = logits[row + c];
        if (y > x || (y === x && c < label) || Number.isNaN(y)) rank++;
      }
    }
    ks.forEach((k, i) => {
      if (rank >= k) wrong[i]++;
    });
  }
  return { k: [...ks], wrong, total: n, rate: wrong.map((w) => w / n) };
}

function metricsError(file: string, problem: string): DiagnosticError {
  return new DiagnosticError(
    diag("AX4104", { file: `\`${file}\``, problem }, undefined, {
      help: "fix or move the file away; a fresh run recreates it",
    }),
  );
}

/** Softmax of each row of `classes` logits (max-subtracted, so large logits cannot overflow). */
export function softmaxRows(logits: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let row = 0; row < logits.length; row += classes) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[row + c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += out[row + c] = Math.exp(logits[row + c] - max);
    for (let c = 0; c < classes; c++) out[row + c] /= sum;
  }
  return out;
}

/**
 * Scores per image: the logits of a single view, or the mean of the views' softmax outputs (the
 * paper's ten-crop average).
 */
export async function averagedScores(
  classify: (images: Float32Array) => Promise<Float32Array>,
  views: Float32Array[],
  classes: number,
): Promise<Float32Array> {
  if (views.length === 1) return classify(views[0]);
  let sum: Float32Array | undefined;
  for (const v of views) {
    const probs = softmaxRows(await classify(v), classes);
    if (!sum) sum = probs;
    else for (let i = 0; i < sum.length; i++) sum[i] += probs[i];
  }
  for (let i = 0; i < sum!.length; i++) sum![i] /= views.length;
  return sum!;
}
