// fuse: Graph → fusion groups. Rule-based, like XLA's and TVM's operator fusion: a group forms around
// an anchor (a convolution or dense layer: the kernel that reads and writes the most memory per
// FLOP saved) and absorbs the element-wise layers that follow it, which then cost no dispatch and no
// round trip through memory. Every node is in exactly one group; a group of one is an unfused node.
//
// Rules, in the order they are tried for each anchor:
//  - an activation (relu, tanh, sigmoid) that is the anchor's only consumer becomes its epilogue:
//    the anchor's kernels store act(acc) into the activation's tensor, and the anchor's own output is
//    never materialised. Valid in training too: the activation's backward needs only its output y,
//    and the anchor's backward needs its input, its weight and ∂L/∂(its output) — not its output.
// Everything else is a boundary, with the reason recorded for `alexc compile --explain-fusion`.
// The lowerings (lower.ts, lower-train.ts) read the groups; the numbers are those of the unfused
// plan bit for bit, because the epilogue is the very expression the activation kernel evaluates.
import type { ActivationOp, Graph, Node } from "./graph.ts";
import { activationOps } from "./check/attributes.ts";

/** A fused kernel group: its anchor, the layers it covers in order, and what its kernels write. */
export interface FusedGroup {
  /** The group's name: its anchor's, with `+` and the absorbed layers (`conv1+relu1`). */
  name: string;
  anchor: string;
  /** The layers of the group in graph order, the anchor first. */
  members: string[];
  /** The activation stored by the anchor's kernels, when one was absorbed. */
  epilogue?: { op: ActivationOp; node: string };
  /** The tensor the group's kernels write: the last member's output. */
  output: string;
}

/** Why a layer ends a group (or stands alone): shown by --explain-fusion. */
export interface FusionBoundary {
  after: string;
  reason: string;
}

export interface Fusion {
  groups: FusedGroup[];
  boundaries: FusionBoundary[];
  /** Absorbed layer → the anchor whose kernels compute it. */
  absorbedInto: Record<string, string>;
}

const ACTIVATIONS = new Set<string>(activationOps);
const ANCHORS = new Set<string>(["conv", "dense"]);

/** The groups of `graph`; with `enabled: false`, every node alone (the unfused plan, for comparison). */
export function planFusion(graph: Graph, opts: { enabled?: boolean } = {}): Fusion {
  const consumers = new Map<string, Node[]>();
  for (const n of graph.nodes) for (const x of n.inputs) consumers.set(x, [...(consumers.get(x) ?? []), n]);
  const groups: FusedGroup[] = [];
  const boundaries: FusionBoundary[] = [];
  const absorbedInto: Record<string, string> = {};
  const alone = (n: Node, reason: string) => {
    groups.push({ name: n.name, anchor: n.name, members: [n.name], output: n.name });
    boundaries.push({ after: n.name, reason });
  };
  for (const n of graph.nodes) {
    if (absorbedInto[n.name]) continue;
    if (opts.enabled === false) {
      alone(n, "fusion disabled");
      continue;
    }
    if (!ANCHORS.has(n.attrs.op)) {
      alone(n, aloneReason(n));
      continue;
    }
    const next = consumers.get(n.name) ?? [];
    const [only] = next;
    let reason: string | undefined;
    if (n.name === graph.logits) reason = "its output is the logits, read by the host";
    else if (next.length !== 1)
      reason =
        next.length === 0
          ? "nothing reads its output"
          : `its output feeds ${next.length} layers (${next.map((c) => c.name).join(", ")})`;
    else if (!ACTIVATIONS.has(only.attrs.op))
      reason = `the next layer, ${only.name} (${only.attrs.op}), is not an element-wise activation`;
    if (reason !== undefined) {
      alone(n, reason);
      continue;
    }
    const op = only.attrs.op as ActivationOp;
    absorbedInto[only.name] = n.name;
    groups.push({
      name: `${n.name}+${only.name}`,
      anchor: n.name,
      members: [n.name, only.name],
      epilogue: { op, node: only.name },
      output: only.name,
    });
    const after = consumers.get(only.name) ?? [];
    boundaries.push({
      after: only.name,
      reason:
        after.length !== 1
          ? `its output feeds ${after.length} layers`
          : after[0].attrs.op === "dropout"
            ? `the next layer, ${after[0].name} (dropout), is not an epilogue yet: its mask kernel runs on its own`
            : `the next layer, ${after[0].name} (${after[0].attrs.op}), is not element-wise`,
    });
  }
  return { groups, boundaries, absorbedInto };
}

function aloneReason(n: Node): string {
  switch (n.attrs.op) {
    case "softmax_cross_entropy":
      return "softmax and cross-entropy are already one kernel (and one node)";
    case "dropout":
      return "dropout is its own kernel (a mask from the step's seed; an identity at inference)";
    default:
      return `${n.attrs.op} is not an anchor (only conv and dense absorb element-wise layers)`;
  }
}

/** The group whose anchor is `node`, if `node` anchors a fused group (more than one member). */
export function fusedAt(fusion: Fusion, node: string): FusedGroup | undefined {
  const g = fusion.groups.find((x) => x.anchor === node);
  return g && g.members.length > 1 ? g : undefined;
}

/** `--explain-fusion`: each group on a line with its members, then the reason it ends. */
export function explainFusion(fusion: Fusion): string {
  const reasonAfter = new Map(fusion.boundaries.map((b) => [b.after, b.reason]));
  const width = Math.max(...fusion.groups.map((g) => g.name.length));
  const lines = fusion.groups.map((g) => {
    const last = g.members[g.members.length - 1];
    const what = g.epilogue ? `${g.anchor} with ${g.epilogue.op} epilogue` : "alone";
    return `${g.name.padEnd(width)}  ${what}; ends: ${reasonAfter.get(last) ?? "(end of graph)"}`;
  });
  const fused = fusion.groups.filter((g) => g.members.length > 1).length;
  const nodes = fusion.groups.reduce((a, g) => a + g.members.length, 0);
  return [`${fusion.groups.length} groups for ${nodes} layers (${fused} fused)`, ...lines].join("\n");
}
