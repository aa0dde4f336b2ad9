// Runs an ONNX model in onnxruntime-node (CPU): the independent reference the exporter and the
// whole-network tests compare against.
import * as ort from "onnxruntime-node";

export interface FeedTensor {
  data: Float32Array;
  dims: number[];
}

/** Runs `model` once on `feeds`; returns every model output as a flat Float32Array. */
export async function runOnnx(
  model: Uint8Array,
  feeds: Record<string, FeedTensor>,
): Promise<Record<string, Float32Array>> {
  // One thread and sequential execution keep results reproducible and the test machine calm.
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ["cpu"],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: "sequential",
    // "basic" folds constants but fuses no kernels: the reference stays close to the model as written.
    graphOptimizationLevel: "basic",
  });
  try {
    const inputs: Record<string, ort.Tensor> = {};
    for (const [name, { data, dims }] of Object.entries(feeds)) {
      inputs[name] = new ort.Tensor("float32", data, dims);
    }
    const results = await session.run(inputs);
    const out: Record<string, Float32Array> = {};
    for (const [name, tensor] of Object.entries(results)) {
      if (tensor.type !== "float32") throw new Error(`output ${name} is ${tensor.type}, expected float32`);
      out[name] = new Float32Array(tensor.data as Float32Array);
    }
    return out;
  } finally {
    await session.release();
  }
}
