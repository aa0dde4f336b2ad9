// Checked graphs of the models in models/ and weights that make whole-network comparisons meaningful,
// for the tests that run a network against an independent reference.
import { readFileSync } from "node:fs";
import { compileSource } from "../../compiler/frontend.ts";
import { elementCount, type Graph } from "../../compiler/graph.ts";
import { fillNormal, paramStream } from "../../runtime/init.ts";

/** The checked graph of `models/<model>`; throws with the diagnostics when it does not check. */
export function modelGraph(model: string): Graph {
  const result = compileSource(readFileSync(new URL(`../../models/${model}`, import.meta.url), "utf8"));
  if (!result.graph) throw new Error(`${model}: ${result.diagnostics.map((d) => d.message).join("; ")}`);
  return result.graph;
}

/**
 * Weights that keep activations alive through every layer (He-style std per fan-in, biases small and
 * random) — the paper's N(0, 0.01) would let a deep net's logits collapse to the bias path, which
 * would compare little.
 */
export function liveWeights(graph: Graph, seed: number): Map<string, Float32Array> {
  const weights = new Map<string, Float32Array>();
  for (const p of graph.params) {
    const data = new Float32Array(elementCount(p.shape));
    const fanIn = p.shape.length > 1 ? elementCount(p.shape.slice(1)) : 0;
    fillNormal(data, 0, fanIn ? Math.sqrt(2 / fanIn) : 0.1, paramStream(seed, p.name));
    weights.set(p.name, data);
  }
  return weights;
}
