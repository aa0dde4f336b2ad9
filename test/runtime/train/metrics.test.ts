import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DiagnosticError } from "../../../compiler/diagnostics.ts";
import { MetricsWriter, readMetrics, topKErrors, type EpochRecord } from "../../../runtime/train/metrics.ts";

let dir: string;
let file: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "alexc-metrics-"));
  file = path.join(dir, "metrics.jsonl");
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function record(epoch: number, extra: Partial<EpochRecord> = {}): EpochRecord {
  return {
    epoch,
    trainLoss: 2 / epoch,
    trainTop1: 0.5 / epoch,
    trainTop5: 0.1 / epoch,
    valTop1: 0.6 / epoch,
    valTop5: 0.2 / epoch,
    lr: 0.01,
    seconds: 12.5,
    ...extra,
  };
}

describe("MetricsWriter", () => {
  it("appends one JSON line per epoch", () => {
    const w = MetricsWriter.open(file, 0);
    w.append(record(1));
    w.append(record(2, { valTop1: null, valTop5: null }));
    w.close();
    const lines = fs.readFileSync(file, "utf8").split("\n");
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[0])).toEqual(record(1));
    expect(Object.keys(JSON.parse(lines[1]))).toEqual([
      "epoch",
      "trainLoss",
      "trainTop1",
      "trainTop5",
      "valTop1",
      "valTop5",
      "lr",
      "seconds",
    ]);
    expect(readMetrics(file)).toEqual([record(1), record(2, { valTop1: null, valTop5: null })]);
  });

  it("on resume cuts the file back to the resumed epoch, so no epoch appears twice", () => {
    const w = MetricsWriter.open(file, 0);
    for (let e = 1; e <= 4; e++) w.append(record(e));
    w.close();
    fs.appendFileSync(file, '{"epoch": 5, "trainLo'); // a line torn by a kill
    const resumed = MetricsWriter.open(file, 2);
    expect(resumed.records.map((r) => r.epoch)).toEqual([1, 2]);
    resumed.append(record(3, { lr: 0.001 }));
    resumed.close();
    expect(readMetrics(file).map((r) => [r.epoch, r.lr])).toEqual([
      [1, 0.01],
      [2, 0.01],
      [3, 0.001],
    ]);
    // A fresh run (resumed epoch 0) starts an empty file.
    MetricsWriter.open(file, 0).close();
    expect(fs.readFileSync(file, "utf8")).toBe("");
  });

  it("stores non-finite values as null and reads train values back as NaN", () => {
    const w = MetricsWriter.open(file, 0);
    w.append(record(1, { trainLoss: NaN, valTop1: Infinity }));
    w.close();
    expect(fs.readFileSync(file, "utf8")).toContain('"trainLoss":null');
    const [r] = readMetrics(file);
    expect(r.trainLoss).toBeNaN();
    expect(r.valTop1).toBeNull();
  });

  it("refuses repeated epochs and reports a corrupt file", () => {
    const w = MetricsWriter.open(file, 0);
    w.append(record(1));
    expect(() => w.append(record(1))).toThrow(/epoch 1 appended after epoch 1/);
    w.close();
    expect(() => w.append(record(2))).toThrow(/after close/);
    fs.writeFileSync(file, '{"epoch":1}\n');
    const d = (() => {
      try {
        readMetrics(file);
      } catch (error) {
        return (error as DiagnosticError).diagnostics[0];
      }
    })();
    expect(d?.code).toBe("AX4104");
    expect(d?.message).toMatch(/metrics.jsonl`: line 1: `trainLoss`/);
    fs.writeFileSync(file, "not json\n");
    expect(() => MetricsWriter.open(file, 1)).toThrow(/line 1 is not valid JSON/);
    fs.writeFileSync(file, JSON.stringify(record(2)) + "\n" + JSON.stringify(record(1)) + "\n");
    expect(() => readMetrics(file)).toThrow(/line 2 is epoch 1, after epoch 2/);
    expect(readMetrics(path.join(dir, "absent.jsonl"))).toEqual([]);
  });
});

describe("topKErrors", () => {
  it("counts examples whose label is outside the k highest logits", () => {
    // 3 examples × 4 classes.
    const logits = Float32Array.from([
      0.1,
      0.9,
      0.3,
      0.2, // label 1: rank 0
      0.5,
      0.1,
      0.4,
      0.3, // label 2: rank 1
      0.9,
      0.8,
      0.7,
      0.1, // label 3: rank 3
    ]);
    const r = topKErrors(logits, [1, 2, 3], 4, [1, 2, 4]);
    expect(r).toEqual({ k: [1, 2, 4], wrong: [2, 1, 0], total: 3, rate: [2 / 3, 1 / 3, 0] });
  });

  it("ties and NaN never count in the model's favour", () => {
    const constant = new Float32Array(10); // all logits equal
    expect(topKErrors(constant, [9], 10, [1, 5]).wrong).toEqual([1, 1]);
    expect(topKErrors(constant, [0], 10, [1, 5]).wrong).toEqual([0, 0]); // first index wins a tie
    const nan = new Float32Array(10).fill(NaN);
    expect(topKErrors(nan, [0], 10, [1, 5, 10]).wrong).toEqual([1, 1, 1]);
  });

  it("defaults to top-1 and top-5 and checks its inputs", () => {
    const logits = Float32Array.from({ length: 10 }, (_, i) => i);
    expect(topKErrors(logits, [5], 10)).toMatchObject({ k: [1, 5], wrong: [1, 0] });
    expect(() => topKErrors(logits, [4, 1], 10)).toThrow(/10 logits for 2 labels/);
    expect(() => topKErrors(logits, [10], 10)).toThrow(/outside 0..9/);
    expect(topKErrors(new Float32Array(0), [], 10).rate[0]).toBeNaN();
  });
});
