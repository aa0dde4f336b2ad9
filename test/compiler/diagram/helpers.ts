// Shared by the diagram tests: the checked graphs of the models they draw.
import { readFileSync } from "node:fs";
import { compileSource } from "../../../compiler/frontend.ts";
import type { Graph } from "../../../compiler/graph.ts";

export const modelPath = (name: string) => new URL(`../../../models/${name}`, import.meta.url).pathname;
export const threeTowersPath = new URL("./three-towers.net", import.meta.url).pathname;

export function graphOf(path: string): Graph {
  const front = compileSource(readFileSync(path, "utf8"));
  if (!front.graph)
    throw new Error(`${path} does not check: ${front.diagnostics.map((d) => d.message).join("; ")}`);
  return front.graph;
}

/** Every model the repository ships, and the three-tower fixture. */
export const allModels = [
  "alexnet.net",
  "alexnet-67.net",
  "alexnet-small.net",
  "alexnet-fmnist.net",
  "fig1-relu.net",
  "fig1-tanh-fmnist.net",
]
  .map(modelPath)
  .concat(threeTowersPath);

/**
 * A copy of `graph` with node `from` renamed to `to` everywhere a node is named (its readers'
 * inputs, the logits and the loss); parameter names stay, so parameter counts are unchanged.
 */
export function renameNode(graph: Graph, from: string, to: string): Graph {
  const rename = (n: string) => (n === from ? to : n);
  return {
    ...graph,
    nodes: graph.nodes.map((node) => ({ ...node, name: rename(node.name), inputs: node.inputs.map(rename) })),
    logits: rename(graph.logits),
    loss: rename(graph.loss),
  };
}
