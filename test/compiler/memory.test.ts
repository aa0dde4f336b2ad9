// The memory planner (compiler/memory.ts) on every training plan alexc lowers for the three AlexNet
// models (one device; model, data and hybrid placement), checked by the independent checker
// (compiler/memory-check.ts) and by direct assertions; small hand-made plans pin down the liveness
// rules. No GPU.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { main } from "../../compiler/cli.ts";
import { DiagnosticError } from "../../compiler/diagnostics.ts";
import { compileSource } from "../../compiler/frontend.ts";
import { lowerTrainingHybrid } from "../../compiler/lower-hybrid.ts";
import { lowerTrainingData, lowerTrainingPlaced } from "../../compiler/lower-placed.ts";
import { type TrainLowerOptions, lowerTraining } from "../../compiler/lower-train.ts";
import {
  IN_PLACE_OPS,
  type MemoryLimits,
  type MemoryPlan,
  memoryPlanSchema,
  placementOf,
  planMemory,
} from "../../compiler/memory.ts";
import { type MemoryProblem, memoryConflicts } from "../../compiler/memory-check.ts";
import { type Plan, type PlanTensor, planSchema } from "../../compiler/plan.ts";

const LIMITS: MemoryLimits = { maxBindingBytes: 134_217_728, maxBufferBytes: 2 ** 31 };
const models = ["alexnet", "alexnet-small", "alexnet-fmnist"] as const;
const lowerings = {
  one: lowerTraining,
  model: lowerTrainingPlaced,
  data: lowerTrainingData,
  hybrid: lowerTrainingHybrid,
};
type Strategy = keyof typeof lowerings;
const modelFile = (m: string) => new URL(`../../models/${m}.net`, import.meta.url).pathname;

const plans = new Map<string, Plan>();
/** The training plan `alexc compile` would lower at batch 128 (lowered once per test file). */
function trainingPlan(model: (typeof models)[number], strategy: Strategy): Plan {
  const key = `${model}/${strategy}`;
  if (!plans.has(key)) {
    const front = compileSource(readFileSync(modelFile(model), "utf8"));
    if (!front.graph) throw new Error(front.diagnostics.map((d) => d.message).join("; "));
    const opts: TrainLowerOptions = {
      batch: 128,
      maxBindingBytes: LIMITS.maxBindingBytes,
      momentum: 0.9,
      weightDecay: 5e-4,
      activeDropout: front.recipe!.dropout,
      source: model,
      compilerVersion: "test",
    };
    plans.set(key, lowerings[strategy](front.graph, opts).plan);
  }
  return plans.get(key)!;
}

const everyPlan = models.flatMap((m) => (Object.keys(lowerings) as Strategy[]).map((s) => [m, s] as const));

const HOST_ROLES = new Set<PlanTensor["role"]>([
  "param",
  "velocity",
  "input",
  "labels",
  "uniform",
  "logits",
  "loss",
]);

/** The tensors the host writes or reads: they must never share memory with anything. */
function hostTensors(plan: Plan): string[] {
  const t = plan.training!;
  // read per device as `name@devD` (runtime/placed.ts), the gradients on device 0 only
  const io = new Set([t.evalLogits, ...Object.values(t.evalInputs)]);
  const named = new Set([...io, ...Object.values(t.gradients)]);
  return plan.tensors
    .filter(
      (x) =>
        !x.aliasOf &&
        (HOST_ROLES.has(x.role) ||
          x.replicaOf !== undefined ||
          named.has(x.name) ||
          io.has(x.name.replace(/@dev\d+$/, "")) ||
          (x.partOf !== undefined && named.has(x.partOf.tensor))),
    )
    .map((x) => x.name);
}

const ratio = (m: MemoryPlan, d = 0) => m.devices[d].stats.peakBytes / m.devices[d].stats.lowerBoundBytes;

describe("memory plans of the AlexNet training plans", () => {
  it.each(everyPlan)("%s, %s placement: no two live tensors share bytes (exhaustive per arena)", (m, s) => {
    const plan = trainingPlan(m, s);
    for (const inPlace of [true, false]) {
      const memory = planMemory(plan, LIMITS, { inPlace });
      expect(memoryConflicts(plan, memory)).toEqual([]);
    }
    // small arenas: several per lane, the same guarantees
    const small = planMemory(plan, { ...LIMITS, maxBufferBytes: 2 ** 28 });
    expect(memoryConflicts(plan, small)).toEqual([]);
  });

  it("offsets are aligned, tensors lie inside one arena, arenas within maxBufferBytes", () => {
    for (const [m, s] of everyPlan) {
      const plan = trainingPlan(m, s);
      for (const limits of [LIMITS, { ...LIMITS, maxBufferBytes: 2 ** 28, alignment: 1024 }]) {
        const memory = planMemory(plan, limits);
        const alignment = limits.alignment ?? 256;
        expect(memory.alignment).toBe(alignment);
        for (const d of memory.devices) {
          const roots = plan.tensors.filter((t) => t.device === d.device && !t.aliasOf).map((t) => t.name);
          expect(d.placements.map((p) => p.tensor).sort()).toEqual(roots.sort());
          for (const a of d.arenas) expect(a.bytes).toBeLessThanOrEqual(limits.maxBufferBytes);
          for (const p of d.placements) {
            expect(p.offset % alignment).toBe(0);
            expect(p.offset + p.bytes).toBeLessThanOrEqual(d.arenas[p.arena].bytes);
            expect(p.bytes).toBeLessThanOrEqual(limits.maxBindingBytes);
          }
          expect(d.stats.peakBytes).toBe(d.arenas.reduce((sum, a) => sum + a.bytes, 0));
          expect(d.stats.lowerBoundBytes).toBeLessThanOrEqual(d.stats.peakBytes);
          expect(d.stats.peakBytes).toBeLessThanOrEqual(d.stats.noReuseBytes);
        }
      }
    }
  });

  it("parameters, optimizer state and every host-visible tensor share memory with nothing", () => {
    for (const [m, s] of everyPlan) {
      const plan = trainingPlan(m, s);
      const memory = planMemory(plan, LIMITS);
      const host = new Set(hostTensors(plan));
      for (const d of memory.devices) {
        for (const p of d.placements) {
          if (!host.has(p.tensor)) continue;
          expect(p.pinned, p.tensor).toBe(true);
          const shared = d.placements.filter(
            (q) =>
              q !== p &&
              q.arena === p.arena &&
              q.offset < p.offset + p.bytes &&
              p.offset < q.offset + q.bytes,
          );
          expect(
            shared.map((q) => q.tensor),
            `${m}/${s}: ${p.tensor}`,
          ).toEqual([]);
        }
      }
    }
  });

  it("the step uniform sits alone in a uniform arena (WebGPU: no uniform and writable storage in one buffer)", () => {
    const plan = trainingPlan("alexnet", "one");
    const memory = planMemory(plan, LIMITS);
    const p = placementOf(plan, memory, plan.training!.uniform);
    const [d] = memory.devices;
    expect(d.arenas[p.arena].lane).toBe("uniform");
    expect(d.placements.filter((q) => q.arena === p.arena).map((q) => q.tensor)).toEqual([
      plan.training!.uniform,
    ]);
  });

  it("in place only for element-wise kernels, over a same-size input at its last use", () => {
    const elementwise = new Set(["relu", "tanh", "sigmoid", "relu.grad", "tanh.grad", "sigmoid.grad"]);
    for (const op of ["dropout.train", "dropout.grad", "grad.accumulate", "gradient.mean", "gradient.sum"])
      elementwise.add(op);
    expect(new Set(IN_PLACE_OPS)).toEqual(elementwise);
    let total = 0;
    for (const [m, s] of everyPlan) {
      const plan = trainingPlan(m, s);
      const memory = planMemory(plan, LIMITS);
      const kernels = new Map(plan.kernels.map((k) => [k.name, k]));
      const bytes = new Map(plan.tensors.map((t) => [t.name, t.bytes]));
      for (const d of memory.devices) {
        for (const ip of d.stats.inPlace) {
          const k = kernels.get(ip.kernel)!;
          expect(elementwise.has(k.op), `${ip.kernel} (${k.op})`).toBe(true);
          expect(k.bindings.some((b) => b.tensor === ip.tensor && b.access === "read_write")).toBe(true);
          expect(k.bindings.some((b) => b.tensor === ip.sharesWith && b.access === "read")).toBe(true);
          // every storage binding of one size: the index written is the index read
          for (const b of k.bindings)
            if (b.access !== "uniform") expect(bytes.get(b.tensor)).toBe(bytes.get(ip.tensor));
          const [x, y] = [ip.sharesWith, ip.tensor].map((n) => d.placements.find((p) => p.tensor === n)!);
          expect([x.pinned, y.pinned]).toEqual([false, false]);
          expect([y.arena, y.offset]).toEqual([x.arena, x.offset]);
          expect(x.live![1]).toBe(y.live![0]);
        }
        total += d.stats.inPlace.length;
      }
      // the hybrid boundary's batch gradient sum reads x[i + offset] of a twice-larger x: never in place
      for (const d of memory.devices)
        expect(d.stats.inPlace.filter((ip) => ip.kernel.startsWith("h_grad_sum"))).toEqual([]);
    }
    expect(total).toBeGreaterThan(0);
    // without in-place, nothing is shared at one position
    const plan = trainingPlan("alexnet", "one");
    expect(planMemory(plan, LIMITS, { inPlace: false }).devices[0].stats.inPlace).toEqual([]);
  });

  it("alexnet.net training at batch 128 peaks within 1.15 × the liveness lower bound", () => {
    const plan = trainingPlan("alexnet", "one");
    expect(plan.microBatch).toBe(64);
    const memory = planMemory(plan, LIMITS);
    const [d] = memory.devices;
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    console.log(
      `alexnet.net b128 (micro 64): peak ${mib(d.stats.peakBytes)}, no reuse ${mib(d.stats.noReuseBytes)}, ` +
        `lower bound ${mib(d.stats.lowerBoundBytes)}, peak/lower ${ratio(memory).toFixed(4)}, ${d.stats.inPlace.length} in place`,
    );
    expect(ratio(memory)).toBeLessThanOrEqual(1.15);
    expect(d.stats.peakBytes).toBeLessThan(0.7 * d.stats.noReuseBytes);
    // and every other plan measured (printed for the record)
    const lines: string[] = [];
    for (const [m, s] of everyPlan) {
      const mem = planMemory(trainingPlan(m, s), LIMITS);
      mem.devices.forEach((_, i) => {
        lines.push(`${m} ${s} device ${i}: ${ratio(mem, i).toFixed(4)}`);
        expect(ratio(mem, i), `${m} ${s} device ${i}`).toBeLessThanOrEqual(1.15);
      });
    }
    console.log(lines.join("\n"));
  });

  it("the memory plan is plain data: it survives JSON and validates", () => {
    const plan = trainingPlan("alexnet-small", "data");
    const memory = planMemory(plan, LIMITS);
    expect(memoryPlanSchema.parse(JSON.parse(JSON.stringify(memory)))).toEqual(memory);
  });
});

describe("the checker", () => {
  const plan = trainingPlan("alexnet-small", "one");
  const kinds = (problems: MemoryProblem[]) => [...new Set(problems.map((p) => p.kind))];
  const mutated = (change: (m: MemoryPlan) => void) => {
    const m = structuredClone(planMemory(plan, LIMITS));
    change(m);
    return memoryConflicts(plan, m);
  };
  const temporary = (m: MemoryPlan) => m.devices[0].placements.filter((p) => !p.pinned && p.live);

  it("finds two live tensors at one offset", () => {
    const problems = mutated((m) => {
      const [a, b] = temporary(m).filter((p) => p.live![0] <= 3 && p.live![1] >= 3);
      Object.assign(b, { arena: a.arena, offset: a.offset });
    });
    expect(kinds(problems)).toContain("overlap");
  });

  it("finds a parameter overlapping a temporary at any time", () => {
    const problems = mutated((m) => {
      // the parameters (conv2.weight among them) live in the flat parameter arena (fuse-optimizer.ts)
      const param = m.devices[0].placements.find((p) => p.tensor === "arena:params:dev0")!;
      const t = temporary(m)[0];
      Object.assign(param, { arena: t.arena, offset: t.offset });
    });
    expect(kinds(problems)).toContain("overlap");
  });

  it("finds misaligned offsets, tensors outside their arena and missing placements", () => {
    expect(kinds(mutated((m) => (m.devices[0].placements[0].offset += 4)))).toContain("alignment");
    expect(kinds(mutated((m) => (m.devices[0].arenas[1].bytes = 256)))).toContain("bounds");
    expect(kinds(mutated((m) => m.devices[0].placements.pop()))).toContain("missing");
  });

  it("refuses an in-place pair that is not element-wise", () => {
    const problems = mutated((m) => {
      const conv = plan.kernels.find((k) => k.op.startsWith("conv") && !k.op.includes("grad"))!;
      const x = conv.bindings[0].tensor;
      const y = conv.bindings.find((b) => b.access === "read_write")!.tensor;
      const [px, py] = [x, y].map((n) => m.devices[0].placements.find((p) => p.tensor === n)!);
      Object.assign(py, { arena: px.arena, offset: px.offset });
      m.devices[0].stats.inPlace.push({ tensor: y, sharesWith: x, kernel: conv.name });
    });
    expect(kinds(problems)).toContain("in-place");
  });
});

// ---- hand-made plans: the liveness rules ----

type Step =
  | { kernel: string; op?: string; device?: number; bind: [string, "read" | "read_write" | "uniform"][] }
  | { transfer: [string, string, number, number] };

/** A plan of `tensors` (name → bytes, role) and steps; `evalSteps` make it a training plan. */
function handMade(
  tensors: Record<string, [number, PlanTensor["role"]?, number?]>,
  steps: Step[],
  evalSteps?: Step[],
): Plan {
  const kernels: Plan["kernels"] = [];
  const lower = (s: Step) => {
    if ("transfer" in s) {
      const [tensor, peer, from, to] = s.transfer;
      return { kind: "transfer" as const, tensor, peer, from, to, bytes: tensors[tensor][0] };
    }
    kernels.push({
      ...{
        name: s.kernel,
        file: `kernels/${s.kernel}.wgsl`,
        layer: s.kernel,
        op: s.op ?? "conv",
        group: [s.kernel],
      },
      ...{
        device: s.device ?? 0,
        entryPoint: "main",
        workgroupSize: [64, 1, 1],
        dispatch: [1, 1, 1],
        flops: 0,
      },
      bindings: s.bind.map(([tensor, access], binding) => ({ binding, tensor, access })),
    });
    return { kind: "dispatch" as const, kernel: s.kernel };
  };
  const schedule = steps.map(lower);
  const evalSchedule = evalSteps?.map(lower);
  const devices = Math.max(...Object.values(tensors).map(([, , d]) => d ?? 0)) + 1;
  return planSchema.parse({
    ...{ format: "alexc-plan", version: 1, compiler: "test", network: "n", source: "n.net" },
    ...{ mode: evalSchedule ? "train" : "forward", batch: 1, classes: 2, towers: 1 },
    devices: Array.from({ length: devices }, (_, index) => ({ index, label: `device ${index}` })),
    tensors: Object.entries(tensors).map(([name, [bytes, role, device]]) => ({
      ...{ name, shape: [bytes / 4], dtype: "f32", role: role ?? "activation", bytes, device: device ?? 0 },
    })),
    ...{ params: [], kernels, schedule, inputs: ["x"], logits: "out" },
    ...(evalSchedule
      ? {
          training: {
            ...{ labels: "x", loss: "out", uniform: "x", momentum: 0, weightDecay: 0, evalSchedule },
            ...{ evalInputs: {}, evalLogits: "out", gradients: {}, velocities: {}, valueGradients: {} },
            ...{ saved: [], dropout: [], layers: [] },
          },
        }
      : {}),
  });
}

const K = 4096;
const at = (m: MemoryPlan, t: string) => m.devices[0].placements.find((p) => p.tensor === t)!;
const share = (m: MemoryPlan, a: string, b: string) =>
  at(m, a).arena === at(m, b).arena && at(m, a).offset === at(m, b).offset;

describe("liveness rules", () => {
  // x (input) → a → b → out, with c alongside; each temporary dead after its last read
  const chain = (extra: Step[] = []) =>
    handMade({ x: [K, "input"], a: [K], b: [K], c: [K], out: [K, "logits"] }, [
      {
        kernel: "k0",
        bind: [
          ["x", "read"],
          ["a", "read_write"],
        ],
      },
      {
        kernel: "k1",
        bind: [
          ["a", "read"],
          ["b", "read_write"],
        ],
      },
      {
        kernel: "k2",
        bind: [
          ["b", "read"],
          ["c", "read_write"],
        ],
      },
      ...extra,
      {
        kernel: "k9",
        bind: [
          ["c", "read"],
          ["out", "read_write"],
        ],
      },
    ]);

  it("a temporary's bytes are reused once its last reader has run", () => {
    const m = planMemory(chain(), LIMITS);
    expect(share(m, "a", "c")).toBe(true);
    expect(memoryConflicts(chain(), m)).toEqual([]);
  });

  it("a read_write binding is a use: a += … keeps the tensor alive", () => {
    // `a` accumulated into at k3: it must survive k2, so it cannot share with c
    const plan = chain([
      {
        kernel: "k3",
        bind: [
          ["c", "read"],
          ["a", "read_write"],
        ],
      },
    ]);
    const m = planMemory(plan, LIMITS);
    expect(share(m, "a", "c")).toBe(false);
    expect(at(m, "a").live).toEqual([0, 3]);
    expect(memoryConflicts(plan, m)).toEqual([]);
  });

  it("a tensor read before its first write in a run carries state across runs: pinned", () => {
    const plan = handMade({ x: [K, "input"], acc: [K], t: [K], out: [K, "logits"] }, [
      {
        kernel: "k0",
        bind: [
          ["acc", "read"],
          ["x", "read"],
          ["t", "read_write"],
        ],
      },
      {
        kernel: "k1",
        bind: [
          ["t", "read"],
          ["acc", "read_write"],
        ],
      },
      {
        kernel: "k2",
        bind: [
          ["t", "read"],
          ["out", "read_write"],
        ],
      },
    ]);
    const m = planMemory(plan, LIMITS);
    expect(at(m, "acc").pinned).toBe(true);
    expect(at(m, "t").pinned).toBe(false);
  });

  it("the training and eval schedules' temporaries share memory; the eval's are live after training's", () => {
    const plan = handMade(
      { x: [K, "input"], a: [K], e: [K], out: [K, "logits"] },
      [
        {
          kernel: "k0",
          bind: [
            ["x", "read"],
            ["a", "read_write"],
          ],
        },
        {
          kernel: "k1",
          bind: [
            ["a", "read"],
            ["out", "read_write"],
          ],
        },
      ],
      [
        {
          kernel: "k2",
          bind: [
            ["x", "read"],
            ["e", "read_write"],
          ],
        },
        {
          kernel: "k3",
          bind: [
            ["e", "read"],
            ["out", "read_write"],
          ],
        },
      ],
    );
    const m = planMemory(plan, LIMITS);
    expect(share(m, "a", "e")).toBe(true);
    expect(at(m, "e").live).toEqual([2, 3]);
    expect(m.scheduleSteps).toBe(2);
  });

  it("a transfer reads its tensor on one device and defines its peer on the other", () => {
    const plan = handMade(
      {
        x: [K, "input"],
        a: [K],
        b: [K],
        "a@dev1": [K, "activation", 1],
        c: [K, "activation", 1],
        out: [K, "logits", 1],
      },
      [
        {
          kernel: "k0",
          bind: [
            ["x", "read"],
            ["a", "read_write"],
          ],
        },
        { transfer: ["a", "a@dev1", 0, 1] },
        {
          kernel: "k1",
          bind: [
            ["x", "read"],
            ["b", "read_write"],
          ],
        },
        {
          kernel: "k2",
          device: 1,
          bind: [
            ["a@dev1", "read"],
            ["c", "read_write"],
          ],
        },
        {
          kernel: "k3",
          device: 1,
          bind: [
            ["c", "read"],
            ["out", "read_write"],
          ],
        },
      ],
    );
    const m = planMemory(plan, LIMITS);
    expect(at(m, "a").live).toEqual([0, 1]);
    expect(share(m, "a", "b")).toBe(true); // a is dead once sent
    const peer = m.devices[1].placements.find((p) => p.tensor === "a@dev1")!;
    expect(peer.live).toEqual([1, 3]);
    expect(memoryConflicts(plan, m)).toEqual([]);
  });

  it("in place: relu over its input at the input's last use, not when the input is read later or pinned", () => {
    const relu = (extra: Step[], xRole?: PlanTensor["role"]) =>
      handMade({ x: [K, "input"], a: [K, xRole], y: [K], out: [K, "logits"] }, [
        {
          kernel: "k0",
          bind: [
            ["x", "read"],
            ["a", "read_write"],
          ],
        },
        {
          kernel: "k1",
          op: "relu",
          bind: [
            ["a", "read"],
            ["y", "read_write"],
          ],
        },
        ...extra,
        {
          kernel: "k9",
          bind: [
            ["y", "read"],
            ["out", "read_write"],
          ],
        },
      ]);
    const m = planMemory(relu([]), LIMITS);
    expect(m.devices[0].stats.inPlace).toEqual([{ tensor: "y", sharesWith: "a", kernel: "k1" }]);
    expect(share(m, "a", "y")).toBe(true);
    expect(memoryConflicts(relu([]), m)).toEqual([]);
    const later = relu([
      {
        kernel: "k2",
        bind: [
          ["a", "read"],
          ["y", "read_write"],
        ],
      },
    ]);
    expect(planMemory(later, LIMITS).devices[0].stats.inPlace).toEqual([]);
    expect(planMemory(relu([], "saved"), LIMITS).devices[0].stats.inPlace).toHaveLength(1);
    expect(planMemory(relu([], "param"), LIMITS).devices[0].stats.inPlace).toEqual([]);
  });
});

describe("device limits", () => {
  const plan = trainingPlan("alexnet", "one");

  it("AX3007: a plan over the device's memory budget fails with the numbers and the ways out", () => {
    const peak = planMemory(plan, LIMITS).devices[0].stats.peakBytes;
    expect(() => planMemory(plan, { ...LIMITS, deviceMemoryBytes: peak })).not.toThrow();
    let error: unknown;
    try {
      planMemory(plan, { ...LIMITS, deviceMemoryBytes: 2 ** 29 }); // below the ~1,013 MiB peak
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DiagnosticError);
    const [d] = (error as DiagnosticError).diagnostics;
    expect(d.code).toBe("AX3007");
    expect(d.message).toContain(peak.toLocaleString("en-US"));
    expect(d.message).toContain("536,870,912 bytes (512.0 MiB)");
    expect(d.message).toContain("device 0");
    expect(d.help).toMatch(/smaller --batch \(this plan's is 128, run in micro-batches of 64\)/);
    expect(d.help).toContain("--placement model or --placement data");
    // a placed plan names the other placements
    const placed = trainingPlan("alexnet", "model");
    const [p] = (() => {
      try {
        planMemory(placed, { ...LIMITS, deviceMemoryBytes: 2 ** 29 });
      } catch (e) {
        return (e as DiagnosticError).diagnostics;
      }
      return [];
    })();
    expect(p.code).toBe("AX3007");
    expect(p.help).toContain("--placement data, --placement hybrid");
  });

  it("AX3001: a tensor over the binding limit is refused", () => {
    expect(() => planMemory(plan, { ...LIMITS, maxBindingBytes: 2 ** 26 })).toThrow(/AX3001/);
  });
});

describe("alexc info --memory", () => {
  const file = modelFile("alexnet");
  async function alexc(...args: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(args, { out: (t) => void out.push(t), err: (t) => void err.push(t) });
    return { code, out: out.join("\n"), err: err.join("\n") };
  }

  it("prints a row per device: peak, no reuse, lower bound, ratio, arenas, in place", async () => {
    const one = await alexc("info", file, "--memory");
    expect(one.code).toBe(0);
    expect(one.out).toContain("training plan at batch 128 in micro-batches of 64, one device");
    expect(one.out).toMatch(/peak bytes +no-reuse bytes +lower-bound bytes +peak\/lower +arenas +in place/);
    expect(one.out).toMatch(
      /^device 0 +[\d,]+ \([\d,.]+ MiB\) +[\d,]+ \([\d,.]+ MiB\) +[\d,]+ \([\d,.]+ MiB\) +1\.\d{3} +3 +\d+$/m,
    );
    const model = await alexc("info", file, "--memory", "--placement", "model", "--batch", "64");
    expect(model.code).toBe(0);
    expect(model.out).toContain("batch 64, placement model over 2 devices");
    expect(model.out).toMatch(/^device 1 +[\d,]+ \(/m);
    expect(model.out).toMatch(/^total +[\d,]+ \(/m);
  });

  it("--format json gives the per-device figures", async () => {
    const { code, out } = await alexc("info", file, "--memory", "--placement", "data", "--format", "json");
    expect(code).toBe(0);
    const r = JSON.parse(out);
    expect(r).toMatchObject({ network: "alexnet", batch: 128, placement: "data" });
    expect(r.devices).toHaveLength(2);
    for (const d of r.devices) {
      expect(d.peakBytes).toBeGreaterThanOrEqual(d.lowerBoundBytes);
      expect(d.ratio).toBeLessThanOrEqual(1.15);
    }
  });

  it("--device-memory too small: AX3007 with the help line, exit 1; bad options: exit 2", async () => {
    const small = await alexc("info", file, "--memory", "--device-memory", "512MiB");
    expect(small.code).toBe(1);
    expect(small.err).toContain("error AX3007: the plan needs");
    expect(small.err).toContain("the budget is 536,870,912 bytes (512.0 MiB)");
    expect(small.err).toContain("help: compile with a smaller --batch");
    expect((await alexc("info", file, "--memory", "--placement", "all")).code).toBe(2);
    expect((await alexc("info", file, "--memory", "--device-memory", "lots")).code).toBe(2);
  });
});
