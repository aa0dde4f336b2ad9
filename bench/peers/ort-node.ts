// onnxruntime-node on the CPU (native MLAS kernels, all cores, default session options): writes the
// reference logits every other peer is checked against, and is the native-CPU column of the forward
// rows. It has no training API (onnxruntime-training is a separate build), so training rows are n/a.
import { writeFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
import { exportOnnx } from "../../compiler/onnx.ts";
import { crossEntropy, loadProblem, peerMain, timeRuns, type PeerResult } from "./common.ts";

await peerMain("ort-node", async (job): Promise<PeerResult> => {
  const p = loadProblem(job);
  const model = exportOnnx(p.graph, p.params, { batch: job.batch });
  const session = await ort.InferenceSession.create(model, { executionProviders: ["cpu"] });
  const feeds = { [p.graph.inputs[0].name]: new ort.Tensor("float32", p.images, p.inputDims) };
  const run = async () => (await session.run(feeds)).logits.data as Float32Array;
  const logits = await run();
  writeFileSync(job.reference, new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
  const settings = ["cpu provider, default threads (all cores) and graph optimisation"];
  // The batch-mean cross-entropy of the reference logits: the first training step's loss, dropout aside.
  const detail = { referenceLoss: crossEntropy(logits, p.labels, p.graph.classes) };
  if (job.mode === "train")
    return { peer: "ort-node", status: "n/a", settings, note: "no training API in onnxruntime-node", detail };
  const timed = await timeRuns(job, run);
  await session.release();
  return { peer: "ort-node", status: "timed", settings, ...timed, detail };
});
