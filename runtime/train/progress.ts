// A per-epoch progress line on stderr: steps, images per second, the epoch's mean loss so far and
// the time left. On a terminal it redraws one line in place (at most ten times a second); into a
// file or pipe it prints a line every `intervalMs` so logs stay readable. Progress is cosmetic,
// so it never throws: a closed or broken stream (EPIPE from `| head`) silences it instead.

/** The parts of a stream progress needs; process.stderr fits. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
  writable?: boolean;
  destroyed?: boolean;
  on?(event: "error", listener: (error: unknown) => void): unknown;
}

export interface ProgressOptions {
  /** 1-based epoch and the run's total, for the label. */
  epoch: number;
  epochs: number;
  /** Replaces "epoch N/M" for other long work (a statistics pass); such lines show no loss. */
  label?: string;
  /** Steps in this epoch, and how many were already done (a run resumed mid-epoch). */
  steps: number;
  startStep?: number;
  batchSize: number;
  stream?: ProgressStream;
  /** Overrides the stream's own isTTY. */
  tty?: boolean;
  /** Non-TTY: at most one line per interval; default 30 s. */
  intervalMs?: number;
  /** Milliseconds; injectable for tests. */
  now?: () => number;
}

const TTY_REDRAW_MS = 100;
const BAR_WIDTH = 24;
/** Streams that already carry our error listener (one each, however many epochs), and those that failed. */
const guarded = new WeakSet<object>();
const broken = new WeakSet<object>();

export class EpochProgress {
  private readonly opts: Required<Omit<ProgressOptions, "stream" | "tty" | "label">>;
  private readonly label: string | undefined;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly start: number;
  private step: number;
  private lossSum = 0;
  private lossCount = 0;
  private lastDraw = -Infinity;
  private finished = false;

  constructor(options: ProgressOptions) {
    const now = options.now ?? (() => performance.now());
    this.opts = {
      epoch: options.epoch,
      epochs: options.epochs,
      steps: options.steps,
      startStep: options.startStep ?? 0,
      batchSize: options.batchSize,
      intervalMs: options.intervalMs ?? 30_000,
      now,
    };
    this.label = options.label;
    this.stream = options.stream ?? (process.stderr as ProgressStream);
    this.tty = options.tty ?? this.stream.isTTY === true;
    this.start = now();
    this.step = this.opts.startStep;
    // An EPIPE arrives as an 'error' event; unheard, Node would turn it into an uncaught exception.
    const stream = this.stream;
    if (typeof stream.on === "function" && !guarded.has(stream)) {
      guarded.add(stream);
      try {
        stream.on("error", () => broken.add(stream));
      } catch {
        broken.add(stream);
      }
    }
  }

  /** Records that `step` steps of the epoch are done, the last batch's loss being `loss`. */
  update(step: number, loss: number): void {
    this.step = step;
    if (Number.isFinite(loss)) {
      this.lossSum += loss;
      this.lossCount++;
    }
    const t = this.opts.now();
    const due = this.tty ? t - this.lastDraw >= TTY_REDRAW_MS : t - this.lastDraw >= this.opts.intervalMs;
    if (!due) return;
    // A pipe's first line waits one interval too: a log should not start with "0 img/s".
    if (!this.tty && this.lastDraw === -Infinity) {
      this.lastDraw = t;
      return;
    }
    this.lastDraw = t;
    this.emit(this.tty ? `\r${this.fit(this.line(t))}\x1b[K` : `${this.line(t)}\n`);
  }

  /** Ends the epoch's line; `summary` (e.g. validation errors) is appended to it. */
  finish(summary?: string): void {
    if (this.finished) return;
    this.finished = true;
    const text = this.line(this.opts.now(), true) + (summary ? `  ${summary}` : "");
    this.emit(this.tty ? `\r${text}\x1b[K\n` : `${text}\n`);
  }

  /** The current line, without control characters (also handy for tests and logs). */
  line(t = this.opts.now(), done = false): string {
    const { epoch, epochs, steps, startStep, batchSize } = this.opts;
    const elapsed = Math.max(0, (t - this.start) / 1000);
    const doneSteps = Math.max(0, this.step - startStep);
    const rate = elapsed > 0 ? (doneSteps * batchSize) / elapsed : 0;
    const fraction = steps > 0 ? Math.min(1, this.step / steps) : 1;
    const filled = Math.round(fraction * BAR_WIDTH);
    const bar = "=".repeat(filled) + (filled < BAR_WIDTH ? ">" + " ".repeat(BAR_WIDTH - filled - 1) : "");
    const loss = this.lossCount > 0 ? (this.lossSum / this.lossCount).toFixed(4) : "-";
    const width = String(steps).length;
    const parts = [
      this.label ?? `epoch ${epoch}/${epochs}`,
      `[${bar}]`,
      `${String(this.step).padStart(width)}/${steps}`,
      `${Math.round(rate)} img/s`,
      ...(this.label === undefined ? [`loss ${loss}`] : []),
    ];
    if (done) parts.push(`took ${duration(elapsed)}`);
    else {
      const left = doneSteps > 0 ? ((steps - this.step) * elapsed) / doneSteps : NaN;
      parts.push(`ETA ${Number.isFinite(left) ? duration(left) : "-"}`);
    }
    return parts.join("  ");
  }

  /** Cuts a redrawn line to the terminal width: a wrapped line can no longer be redrawn with \r. */
  private fit(text: string): string {
    const columns = this.stream.columns;
    return columns !== undefined && columns > 1 && text.length >= columns ? text.slice(0, columns - 1) : text;
  }

  private emit(text: string): void {
    const s = this.stream;
    if (broken.has(s) || s.destroyed === true || s.writable === false) return;
    try {
      s.write(text);
    } catch {
      broken.add(s);
    }
  }
}

/** h:mm:ss, or m:ss under an hour. */
export function duration(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}
