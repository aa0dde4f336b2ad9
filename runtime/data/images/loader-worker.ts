// One thread of the image loader (loader.ts): prepares whole batches. For each batch it allocates
// the output arrays, decodes its files with sharp and writes their network inputs in place, then
// transfers the arrays' buffers to the parent: no pixel is copied between threads, and the parent
// gets plain ArrayBuffers.
//
// Several images of a batch are in flight at once ("lanes"): sharp's decode runs on libuv's
// (process-wide) threadpool, and this thread only starts decodes and does the cheap crop, flip and
// mean arithmetic as each one comes back.
import * as path from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { toNetworkInput, type MeanSpec, type Rgb } from "./augment.ts";
import { decodeImage, ImageDecodeError } from "./decode.ts";
import type { View } from "./types.ts";

/** What the parent passes as workerData. */
export interface WorkerInit {
  root: string;
  size: number;
  crop: number;
  /** `image`, when present, is backed by a SharedArrayBuffer all workers read. */
  mean: MeanSpec;
  /** Images of a batch in flight at once. */
  lanes: number;
}

/** One batch: example i is cut into views[j] with shifts[j], written to output j at slot i. */
export interface WorkerJob {
  id: number;
  examples: { path: string; views: View[]; shifts: Rgb[] }[];
  outputs: number;
}

export type WorkerReply =
  | { type: "ready" }
  /** `errors[i]`: libvips' message when example i did not decode (its slot is left zero). */
  | { type: "done"; id: number; outputs: Float32Array[]; errors: (string | null)[] }
  /** Anything else (a bad request, a bug): the batch cannot be trusted. */
  | { type: "failed"; id: number; message: string };

const port = parentPort;
if (port === null) throw new Error("loader-worker.ts runs only as a worker thread (see loader.ts)");
const init = workerData as WorkerInit;
const stride = 3 * init.crop * init.crop;

async function runJob(job: WorkerJob): Promise<WorkerReply> {
  const n = job.examples.length;
  const outputs = Array.from({ length: job.outputs }, () => new Float32Array(n * stride));
  const errors: (string | null)[] = new Array(n).fill(null);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < n; i = next++) {
      const e = job.examples[i];
      let image;
      try {
        image = await decodeImage(path.join(init.root, e.path), init.size);
      } catch (error) {
        if (!(error instanceof ImageDecodeError)) throw error;
        // `reason` is libvips' message without the path, which the batch report names anyway.
        errors[i] = error.reason;
        continue;
      }
      for (let v = 0; v < outputs.length; v++) {
        toNetworkInput(
          image.pixels,
          init.size,
          e.views[v],
          init.crop,
          init.mean,
          e.shifts[v],
          outputs[v],
          i * stride,
        );
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(init.lanes, n) }, lane));
  } catch (error) {
    return { type: "failed", id: job.id, message: String((error as Error)?.stack ?? error) };
  }
  return { type: "done", id: job.id, outputs, errors };
}

port.on("message", (job: WorkerJob) => {
  void runJob(job).then((reply) =>
    port.postMessage(reply, reply.type === "done" ? reply.outputs.map((o) => o.buffer as ArrayBuffer) : []),
  );
});
port.postMessage({ type: "ready" } satisfies WorkerReply);
