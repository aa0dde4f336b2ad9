import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { EpochProgress, duration, type ProgressStream } from "../../../runtime/train/progress.ts";

/** A stream that records writes; `tty` and `columns` as a terminal would report them. */
function sink(tty: boolean, columns?: number): ProgressStream & { text: string } {
  const s = {
    text: "",
    isTTY: tty,
    columns,
    write(t: string) {
      s.text += t;
      return true;
    },
  };
  return s;
}

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("EpochProgress", () => {
  it("on a terminal redraws one line in place, throttled, with rate, loss and ETA", () => {
    const out = sink(true);
    const c = clock();
    const p = new EpochProgress({
      epoch: 2,
      epochs: 90,
      steps: 100,
      batchSize: 128,
      stream: out,
      now: c.now,
    });
    c.advance(1000);
    p.update(10, 2.0);
    c.advance(10);
    p.update(11, 1.0); // within 100 ms: not drawn
    expect(out.text.split("\r")).toHaveLength(2);
    expect(out.text).toBe(
      "\repoch 2/90  [==>                     ]   10/100  1280 img/s  loss 2.0000  ETA 0:09\x1b[K",
    );
    c.advance(200);
    p.update(50, 0.0);
    expect(out.text).toContain("loss 1.0000"); // the mean of 2, 1 and 0
    p.finish("val top-1 12.3%");
    expect(out.text.endsWith("took 0:01  val top-1 12.3%\x1b[K\n")).toBe(true);
    p.finish(); // idempotent
    expect(out.text.match(/\n/g)).toHaveLength(1);
  });

  it("cuts a redrawn line to the terminal width", () => {
    const out = sink(true, 40);
    const c = clock();
    const p = new EpochProgress({ epoch: 1, epochs: 1, steps: 10, batchSize: 1, stream: out, now: c.now });
    c.advance(500);
    p.update(1, 1);
    expect(out.text).toBe("\r" + p.line().slice(0, 39) + "\x1b[K");
  });

  it("into a pipe prints a full line every interval", () => {
    const out = sink(false);
    const c = clock();
    const p = new EpochProgress({
      epoch: 1,
      epochs: 3,
      steps: 1000,
      startStep: 500, // resumed mid-epoch: the rate counts only this run's steps
      batchSize: 10,
      stream: out,
      now: c.now,
      intervalMs: 5000,
    });
    for (let step = 501; step <= 1000; step++) {
      c.advance(20);
      p.update(step, 0.5);
    }
    const lines = out.text.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(2);
    expect(out.text).not.toContain("\r");
    expect(lines[0]).toMatch(/^epoch 1\/3  \[=+>? *\]  +\d+\/1000  500 img\/s  loss 0\.5000  ETA \d+:\d\d$/);
    p.finish();
    expect(out.text.trimEnd().split("\n").at(-1)).toMatch(/1000\/1000  500 img\/s  loss 0\.5000  took 0:10$/);
  });

  it("never throws on a closed, destroyed or failing stream", () => {
    const closed = new PassThrough();
    closed.destroy();
    const failing: ProgressStream = {
      isTTY: true,
      write() {
        throw Object.assign(new Error("write EPIPE"), { code: "EPIPE" });
      },
    };
    for (const stream of [closed, failing, { write: () => true, writable: false }]) {
      const c = clock();
      const p = new EpochProgress({
        epoch: 1,
        epochs: 1,
        steps: 2,
        batchSize: 1,
        stream,
        now: c.now,
        tty: true,
      });
      c.advance(1000);
      expect(() => {
        p.update(1, 1);
        p.finish();
      }).not.toThrow();
    }
    // An asynchronous EPIPE arrives as an 'error' event, which must not become an uncaught exception.
    const piped = new PassThrough();
    const p = new EpochProgress({ epoch: 1, epochs: 1, steps: 2, batchSize: 1, stream: piped, tty: true });
    expect(() => piped.emit("error", new Error("EPIPE"))).not.toThrow();
    expect(() => p.finish()).not.toThrow();
  });
});

it("duration formats m:ss and h:mm:ss", () => {
  expect(duration(0)).toBe("0:00");
  expect(duration(59.6)).toBe("1:00");
  expect(duration(3725)).toBe("1:02:05");
});
