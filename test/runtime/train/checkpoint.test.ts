import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DiagnosticError } from "../../../compiler/diagnostics.ts";
import {
  checkpointName,
  listCandidates,
  loadLatest,
  trainingIdentity,
  writeCheckpoint,
  type CheckpointContent,
  type LoadedCheckpoint,
} from "../../../runtime/train/checkpoint.ts";
import { Rng } from "../../../runtime/train/rng.ts";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "alexc-ckpt-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const PLAN = { planHash: "plan-a", network: "net" };

function content(step: number, overrides: Partial<CheckpointContent> = {}): CheckpointContent {
  return {
    network: "net",
    planHash: "plan-a",
    seed: 7,
    epoch: 2,
    stepInEpoch: step % 5,
    globalStep: step,
    rng: { seed: 7, streams: { "data-order": [1, 2, 3, 4] } },
    schedule: { kind: "plateau", lr: 0.001, best: null },
    metrics: { trainLoss: 0.5, valTop1: null },
    weights: new Map([
      ["conv1.weight", { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, step]) }],
      ["conv1.bias", { shape: [2], data: Float32Array.from([0.5, -0.5]) }],
    ]),
    momentum: new Map([["conv1.weight", { shape: [2, 3], data: new Float32Array(6).fill(-step) }]]),
    ...overrides,
  };
}

function loaded(): LoadedCheckpoint {
  const result = loadLatest(dir, PLAN);
  expect(result).toBeDefined();
  return result!;
}

function diagnosticOf(fn: () => unknown): DiagnosticError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(DiagnosticError);
    return error as DiagnosticError;
  }
  throw new Error("expected a diagnostic");
}

function checkpoints(): string[] {
  return fs
    .readdirSync(dir)
    .filter((e) => e.startsWith("ckpt-"))
    .sort();
}

describe("writeCheckpoint / loadLatest", () => {
  it("round-trips tensors, state and manifest fields", () => {
    const now = new Date("2025-01-02T03:04:05Z");
    const written = writeCheckpoint(dir, content(12), { now: () => now });
    expect(written.path).toBe(path.join(dir, "ckpt-00000012"));
    expect(fs.readFileSync(path.join(dir, "latest"), "utf8")).toBe("ckpt-00000012\n");
    const ckpt = loaded();
    expect(ckpt.warnings).toEqual([]);
    expect(ckpt.manifest).toMatchObject({
      format: "alexc-checkpoint",
      version: 1,
      network: "net",
      planHash: "plan-a",
      seed: 7,
      epoch: 2,
      stepInEpoch: 2,
      globalStep: 12,
      rng: { seed: 7, streams: { "data-order": [1, 2, 3, 4] } },
      schedule: { kind: "plateau", lr: 0.001, best: null },
      metrics: { trainLoss: 0.5, valTop1: null },
      createdAt: "2025-01-02T03:04:05.000Z",
    });
    expect(ckpt.manifest.files["weights.safetensors"].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect([...ckpt.weights.get("conv1.weight")!.data]).toEqual([1, 2, 3, 4, 5, 12]);
    expect(ckpt.weights.get("conv1.weight")!.shape).toEqual([2, 3]);
    expect([...ckpt.momentum.get("conv1.weight")!.data]).toEqual(new Array(6).fill(-12));
  });

  it("an empty or missing directory means a fresh run", () => {
    expect(loadLatest(dir, PLAN)).toBeUndefined();
    expect(loadLatest(path.join(dir, "nope"), PLAN)).toBeUndefined();
  });

  it("keeps the newest K checkpoints and removes leftovers of interrupted writes", () => {
    fs.mkdirSync(path.join(dir, ".tmp-ckpt-00000001.999.1"));
    fs.mkdirSync(path.join(dir, ".trash-ckpt-00000001.999.2"));
    for (let step = 1; step <= 5; step++) writeCheckpoint(dir, content(step));
    expect(fs.readdirSync(dir).sort()).toEqual(["ckpt-00000004", "ckpt-00000005", "latest"]);
    writeCheckpoint(dir, content(6), { keep: 3 });
    expect(checkpoints()).toEqual(["ckpt-00000004", "ckpt-00000005", "ckpt-00000006"]);
    expect(() => writeCheckpoint(dir, content(7), { keep: 0 })).toThrow(RangeError);
  });

  it("writing an earlier step abandons the later ones, and a step can be rewritten", () => {
    for (const step of [10, 20, 30]) writeCheckpoint(dir, content(step), { keep: 3 });
    writeCheckpoint(dir, content(15), { keep: 3 });
    expect(checkpoints()).toEqual(["ckpt-00000010", "ckpt-00000015"]);
    writeCheckpoint(dir, content(15, { seed: 8 }), { keep: 3 });
    expect(checkpoints()).toEqual(["ckpt-00000010", "ckpt-00000015"]);
    expect(fs.readdirSync(dir).filter((e) => e.startsWith("."))).toEqual([]);
    expect(loaded().manifest.seed).toBe(8);
  });

  const damages: [string, (ckpt: string) => void, RegExp][] = [
    [
      "a flipped weight byte",
      (c) => flipByte(path.join(c, "weights.safetensors"), -1),
      /weights.safetensors does not match its sha256/,
    ],
    [
      "a truncated momentum file",
      (c) => truncate(path.join(c, "momentum.safetensors")),
      /momentum.safetensors is \d+ bytes, the manifest says/,
    ],
    [
      "a missing weights file",
      (c) => fs.rmSync(path.join(c, "weights.safetensors")),
      /weights.safetensors cannot be read \(it is missing\)/,
    ],
    ["a torn manifest", (c) => truncate(path.join(c, "manifest.json")), /manifest.json is not valid JSON/],
    [
      "a manifest of the wrong shape",
      (c) => editManifest(c, (m) => ({ ...m, epoch: -1 })),
      /manifest.json is invalid at `epoch`/,
    ],
    [
      "a manifest for another step",
      (c) => editManifest(c, (m) => ({ ...m, globalStep: 3 })),
      /says step 3, the directory name says 2/,
    ],
    [
      "a removed directory",
      (c) => fs.rmSync(c, { recursive: true }),
      /the directory named by `latest` is missing/,
    ],
  ];
  it.each(damages)("falls back past %s with a warning", (_, damage, problem) => {
    writeCheckpoint(dir, content(1));
    writeCheckpoint(dir, content(2));
    damage(path.join(dir, checkpointName(2)));
    const ckpt = loaded();
    expect(ckpt.manifest.globalStep).toBe(1);
    expect(ckpt.warnings).toHaveLength(1);
    const w = ckpt.warnings[0];
    expect(w.code).toBe("AX4103");
    expect(w.severity).toBe("warning");
    expect(w.message).toContain("ckpt-00000002");
    expect(w.message).toMatch(problem);
    expect(w.message).toMatch(/resuming from `.*ckpt-00000001` instead/);
  });

  it("a damaged safetensors body with a matching hash is still caught", () => {
    writeCheckpoint(dir, content(1));
    writeCheckpoint(dir, content(2));
    const ckpt = path.join(dir, checkpointName(2));
    fs.writeFileSync(path.join(ckpt, "weights.safetensors"), "garbage!");
    const sha256 = createHash("sha256").update("garbage!").digest("hex");
    editManifest(ckpt, (m) => ({ ...m, files: { ...m.files, "weights.safetensors": { bytes: 8, sha256 } } }));
    expect(loaded().warnings[0].message).toMatch(
      /\(weights.safetensors is not valid safetensors \(header length \d+ exceeds the 0 bytes after the length field\)\)/,
    );
  });

  it("fails when every checkpoint is damaged, listing each", () => {
    writeCheckpoint(dir, content(1));
    writeCheckpoint(dir, content(2));
    flipByte(path.join(dir, checkpointName(1), "weights.safetensors"), -1);
    truncate(path.join(dir, checkpointName(2), "manifest.json"));
    const d = diagnosticOf(() => loadLatest(dir, PLAN)).diagnostics[0];
    expect(d.code).toBe("AX4102");
    expect(d.message).toMatch(/none of the 2 checkpoint\(s\) can be loaded/);
    expect(d.notes).toHaveLength(2);
    expect(d.help).toContain("start afresh");
  });

  it("refuses a checkpoint of another plan or network instead of falling back", () => {
    writeCheckpoint(dir, content(1));
    const d = diagnosticOf(() => loadLatest(dir, { planHash: "plan-b" })).diagnostics[0];
    expect(d.code).toBe("AX4102");
    expect(d.message).toMatch(/written for training identity plan-a, but this runner's is plan-b/);
    expect(diagnosticOf(() => loadLatest(dir, { planHash: "plan-a", network: "other" })).message).toMatch(
      /holds network `net`, expected `other`/,
    );
  });

  it("gives a checkpoint the same identity whatever the kernel tiles or source spans, another when the model changes", () => {
    const graph = (span: number, shape: number[]) => ({
      nodes: [{ name: "fc", span: { line: span, col: 1 }, attrs: { op: "dense", units: shape[0] } }],
      params: [{ name: "fc.w", shape, span: { line: span, col: 3 } }],
    });
    const base = trainingIdentity({ graph: graph(3, [10, 4]), recipe: { momentum: 0.9, batch: 128 } });
    expect(base).toMatch(/^[0-9a-f]{16}$/);
    // A reformatted source moves spans; nothing the weights mean changes.
    expect(trainingIdentity({ graph: graph(7, [10, 4]), recipe: { momentum: 0.9, batch: 128 } })).toBe(base);
    expect(trainingIdentity({ graph: graph(3, [10, 5]), recipe: { momentum: 0.9, batch: 128 } })).not.toBe(
      base,
    );
    expect(trainingIdentity({ graph: graph(3, [10, 4]), recipe: { momentum: 0.95, batch: 128 } })).not.toBe(
      base,
    );
    expect(trainingIdentity({ graph: graph(3, [10, 4]), recipe: { momentum: 0.9, batch: 64 } })).not.toBe(
      base,
    );
  });

  it("rejects malformed content before writing anything", () => {
    expect(() => writeCheckpoint(dir, content(-1, { stepInEpoch: 0 }))).toThrow(/`globalStep` Too small/);
    expect(() => writeCheckpoint(dir, content(1, { epoch: 1.5 }))).toThrow(/`epoch`/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it("reports an unwritable directory as a checkpoint diagnostic", () => {
    const file = path.join(dir, "file");
    fs.writeFileSync(file, "");
    expect(diagnosticOf(() => writeCheckpoint(file, content(1))).diagnostics[0].code).toBe("AX4102");
  });

  it("without `latest` (killed before the first pointer) scans the directories", () => {
    writeCheckpoint(dir, content(3));
    fs.rmSync(path.join(dir, "latest"));
    expect(listCandidates(dir)).toEqual([path.join(dir, "ckpt-00000003")]);
    expect(loaded().manifest.globalStep).toBe(3);
  });
});

describe("a writer killed at random moments", () => {
  const TRIALS = 16;
  it("always leaves the newest completed checkpoint loadable", async () => {
    const script = new URL("./fixtures/checkpoint-writer.ts", import.meta.url).pathname;
    const rng = Rng.derive(2024, "kill-times");
    let durable = 0; // the highest step a child reported as written
    let interrupted = 0; // kills that left a write half done
    for (let trial = 0; trial < TRIALS; trial++) {
      const child = spawn(process.execPath, [script, dir, String(1 << 18)], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (chunk) => (stderr += chunk));
      let ready: () => void;
      const started = new Promise<void>((resolve) => (ready = resolve));
      child.stdout.on("data", (chunk: Buffer) => {
        for (const m of chunk.toString().matchAll(/wrote (\d+)/g)) durable = Math.max(durable, Number(m[1]));
        ready();
      });
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.on("exit", (_, signal) => resolve(signal)),
      );
      // Wait for the first completed write of this child (so its startup is over), then a random delay.
      await Promise.race([started, exited]);
      await new Promise((resolve) => setTimeout(resolve, rng.uniformInt(120)));
      child.kill("SIGKILL");
      expect(await exited, stderr).toBe("SIGKILL");
      if (
        fs
          .readdirSync(dir)
          .some((e) => e.startsWith(".tmp-") || e.startsWith(".trash-") || e.startsWith(".replaced-"))
      ) {
        interrupted++;
      }
      const ckpt = loaded();
      expect(ckpt.warnings).toEqual([]);
      const step = ckpt.manifest.globalStep;
      expect(step).toBeGreaterThanOrEqual(durable);
      expect(ckpt.manifest.rng).toEqual({ step });
      const w = ckpt.weights.get("w")!.data;
      expect(w.length).toBe(1 << 18);
      expect(w[0] === step && w[w.length - 1] === step).toBe(true);
      expect(ckpt.momentum.get("w")!.data[100]).toBe(-step);
    }
    console.log(
      `checkpoint kill test: ${durable} checkpoints written, ${interrupted} of ${TRIALS} kills mid-write`,
    );
    expect(durable).toBeGreaterThanOrEqual(TRIALS); // each child completes one write before its kill
    // The kills really landed inside writes, not only between them.
    expect(interrupted).toBeGreaterThan(0);
  });
});

function flipByte(file: string, at: number): void {
  const bytes = fs.readFileSync(file);
  bytes[at < 0 ? bytes.length + at : at] ^= 0xff;
  fs.writeFileSync(file, bytes);
}

function truncate(file: string): void {
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length / 2)));
}

function editManifest(ckpt: string, edit: (m: Record<string, any>) => Record<string, any>): void {
  const file = path.join(ckpt, "manifest.json");
  fs.writeFileSync(file, JSON.stringify(edit(JSON.parse(fs.readFileSync(file, "utf8")))));
}
