// alexc as a peer of `npm run bench`: the same measuring as `alexc bench` (bench/measure.ts) on one
// device, with the inference logits of the initial weights checked against onnxruntime-node's before
// any step is timed. The job with task "ceiling" measures the GEMM ceiling (bench/ceiling.ts) instead.
import type { TuningTable } from "../../compiler/tuning.ts";
import { adapterKey, autotune, collectTunables, loadTuning, saveTuning } from "../../runtime/autotune.ts";
import { closeDevices, openDevices } from "../../runtime/devices.ts";
import { measureCeiling } from "../ceiling.ts";
import { adapterSummary, benchPlan, lowerForBench } from "../measure.ts";
import { check, loadProblem, peerMain, readReference, type Check, type PeerResult } from "./common.ts";

await peerMain("alexc", async (job): Promise<PeerResult> => {
  const t0 = performance.now();
  const devs = await openDevices({ count: 1 });
  try {
    if (job.task === "ceiling") {
      const ceiling = await measureCeiling(devs[0], Math.max(3, job.iters), adapterSummary(devs[0]).cpu);
      return { peer: "alexc", status: "timed", settings: [], detail: { ceiling, device: devs[0].label } };
    }
    const p = loadProblem(job);
    const reference = readReference(job.reference);
    const meta = { source: job.network, compilerVersion: "bench" };
    const shape = {
      mode: job.mode,
      batch: job.batch,
      placement: "none" as const,
      maxBindingBytes: devs[0].maxBindingBytes,
    };
    // --autotune: the convolution tiles measured fastest on this adapter, as `alexc bench --autotune`
    // and the runner's --autotune use them (measured once per shape, cached per adapter)
    let tuning: TuningTable | undefined;
    if (job.autotune) {
      const cached = loadTuning(adapterKey(devs[0]));
      const wanted = collectTunables((onTunable) =>
        lowerForBench(p.graph, p.recipe, shape, meta, { onTunable }),
      );
      tuning = await autotune(devs[0], wanted, cached);
      saveTuning(tuning);
    }
    const setting = job.autotune
      ? "autotuned tiles (runtime/autotune.ts, cached per adapter)"
      : "default lowering";
    const compiled = lowerForBench(p.graph, p.recipe, shape, meta, { tuning });
    let first: Check | undefined;
    const result = await benchPlan(devs, p.graph, p.recipe, compiled, {
      ...{ mode: job.mode, batch: job.batch, placement: "none", iters: job.iters, warmup: job.warmup },
      ...{ kernelReps: job.kernelReps ?? 3, seed: job.seed, loadStartedAt: t0, ...meta },
      onLogits: (logits) => {
        first = check(logits, reference);
        if (!first.ok) throw new Error(`alexc's logits differ from onnxruntime-node's (${first.relError})`);
      },
    }).catch((e) => {
      if (first && !first.ok) return undefined;
      throw e;
    });
    const checks = first ? [{ settings: setting, check: first }] : [];
    if (!result) return { peer: "alexc", status: "wrong", settings: [setting], checks };
    const { logits: _, ...detail } = result;
    return {
      peer: "alexc",
      status: "timed",
      settings: [setting],
      checks,
      runsMs: result.stepsMs,
      median: result.median,
      ...(result.loss !== undefined ? { loss: result.loss } : {}),
      memory: { bytes: result.memory[0].bufferBytes, what: "runtime buffers" },
      detail,
    };
  } finally {
    closeDevices(devs);
  }
});
