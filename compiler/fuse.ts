// fuse: Graph → fusion groups. Rule-based, like XLA's and TVM's operator fusion: a group forms around
// an anchor (a convolution or dense layer, or a max-pool: the kernel that reads and writes the most
// memory per FLOP saved) and absorbs the cheap layers next to it, which then cost no dispatch and no
// round trip through memory. Every node is in exactly one group; a group of one is an unfused node.
//
// Rules, in the order they are tried:
//  - an activation (relu, tanh, sigmoid) that is a conv / dense anchor's only consumer becomes its
//    epilogue: the anchor's kernels store act(acc) into the activation's tensor, and the anchor's own
//    output is never materialised. Valid in training too: the activation's backward needs only its
//    output y, and the anchor's backward needs its input, its weight and ∂L/∂(its output).
//  - a dropout that is the only consumer of such a group's output (or of a bare anchor's) joins the
//    epilogue when the activation is relu or absent: in training the kernel stores mask·act(acc)/(1−p)
//    (wgsl/backward/elementwise.ts, the dropout kernel's hash and expression) into the dropout's tensor,
//    and the activation's output is never stored. relu's derivative is then read from the dropout's
//    output d instead of y: where the mask keeps a unit, d = y/(1−p) and d > 0 ⇔ y > 0; where it drops
//    one, ∂L/∂y = 0 whichever test is used. tanh and sigmoid need y itself, so no dropout after them.
//    At inference (and for a dropout inactive in training) the dropout is the identity: an alias of
//    the group's activation, so the group computes what it did without it (`fusedAt`).
//  - an LRN whose only consumer is a max-pool becomes that pool's prologue: the pool's kernel
//    evaluates the LRN at each window element it reads (wgsl/pool.ts, through lrn.ts's lrn_at), and
//    the LRN's output is never stored, at inference nor in training, where the kernel also writes each
//    window's arg-max — all that the pool's backward reads (wgsl/backward/pool.ts) — so the arg-max
//    kernel goes too. The LRN's backward reads its input x and ∂L/∂(its output), never the output.
// Everything else is a boundary, with the reason recorded for `alexc compile --explain-fusion`.
// The lowerings (lower.ts, lower-train.ts) read the groups; the numbers are those of the unfused
// plan bit for bit, because every fused piece is the very expression of the kernel it replaces.
import type { ActivationOp, Graph, Node } from "./graph.ts";
import { activationOps } from "./check/attributes.ts";

/** A fused kernel group: its anchor, the layers it covers in order, and what its kernels write. */
export interface FusedGroup {
  /** The group's name: its members joined by `+` (`conv1+relu1`, `norm1+pool1`). */
  name: string;
  anchor: string;
  /** The layers of the group in graph order (an LRN prologue before its pool anchor). */
  members: string[];
  /** An LRN evaluated in the (max-pool) anchor's loads; its output is never stored. */
  prologue?: { op: "lrn"; node: string };
  /** The activation stored by the anchor's kernels, when one was absorbed. */
  epilogue?: { op: ActivationOp; node: string };
  /** A dropout whose mask the anchor's kernels apply in training; `input` is the value it reads. */
  dropout?: { node: string; input: string };
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
  const next = (name: string) => consumers.get(name) ?? [];
  const groups: FusedGroup[] = [];
  const boundaries: FusionBoundary[] = [];
  const absorbedInto: Record<string, string> = {};
  const grouped = new Set<string>();
  const alone = (n: Node, reason: string) => {
    groups.push({ name: n.name, anchor: n.name, members: [n.name], output: n.name });
    boundaries.push({ after: n.name, reason });
  };
  /** Why `n`'s output cannot flow into a fused consumer: its only reader, or undefined. */
  const onlyReader = (n: Node): { reader?: Node; reason?: string } => {
    const after = next(n.name);
    if (n.name === graph.logits) return { reason: "its output is the logits, read by the host" };
    if (after.length === 1) return { reader: after[0] };
    return {
      reason:
        after.length === 0
          ? "nothing reads its output"
          : `its output feeds ${after.length} layers (${after.map((c) => c.name).join(", ")})`,
    };
  };
  const group = (g: Omit<FusedGroup, "name" | "output">, reason: string) => {
    const last = g.members[g.members.length - 1];
    groups.push({ name: g.members.join("+"), ...g, output: last });
    for (const m of g.members) grouped.add(m);
    for (const m of g.members) if (m !== g.anchor) absorbedInto[m] = g.anchor;
    boundaries.push({ after: last, reason });
  };

  for (const n of graph.nodes) {
    if (grouped.has(n.name)) continue;
    if (opts.enabled === false) {
      alone(n, "fusion disabled");
      continue;
    }
    const { reader, reason } = onlyReader(n);
    if (n.attrs.op === "lrn") {
      if (!reader) alone(n, reason!);
      else if (reader.attrs.op !== "maxpool")
        alone(n, `the next layer, ${reader.name} (${reader.attrs.op}), is not a max-pool to ride in`);
      else
        group(
          { anchor: reader.name, members: [n.name, reader.name], prologue: { op: "lrn", node: n.name } },
          endReason(reader),
        );
      continue;
    }
    if (!ANCHORS.has(n.attrs.op)) {
      alone(n, aloneReason(n));
      continue;
    }
    if (!reader) {
      alone(n, reason!);
      continue;
    }
    const act = ACTIVATIONS.has(reader.attrs.op) ? reader : undefined;
    if (!act && reader.attrs.op !== "dropout") {
      alone(n, `the next layer, ${reader.name} (${reader.attrs.op}), is not an element-wise activation`);
      continue;
    }
    const members = [n.name, ...(act ? [act.name] : [])];
    const epilogue = act ? { op: act.attrs.op as ActivationOp, node: act.name } : undefined;
    const tail = act ? onlyReader(act) : { reader };
    const drop = tail.reader?.attrs.op === "dropout" ? tail.reader : undefined;
    if (drop && (!act || act.attrs.op === "relu")) {
      const dropout = { node: drop.name, input: members[members.length - 1] };
      group({ anchor: n.name, members: [...members, drop.name], epilogue, dropout }, endReason(drop));
      continue;
    }
    const last = act ?? n;
    group(
      { anchor: n.name, members, epilogue },
      tail.reason ??
        (drop
          ? `the next layer, ${drop.name} (dropout), is no epilogue after ${act!.attrs.op}: its backward reads ${act!.name}'s output, which the fused kernel would not store`
          : endReason(last)),
    );
  }
  return { groups, boundaries, absorbedInto };

  function endReason(last: Node): string {
    const { reader, reason } = onlyReader(last);
    if (!reader) return reason!;
    const what = `the next layer, ${reader.name} (${reader.attrs.op}),`;
    if (ANCHORS.has(reader.attrs.op)) return `${what} is an anchor of its own`;
    if (reader.attrs.op === "lrn") return `${what} is not element-wise (it reads neighbouring channels)`;
    return `${what} is not element-wise`;
  }
}

function aloneReason(n: Node): string {
  switch (n.attrs.op) {
    case "softmax_cross_entropy":
      return "softmax and cross-entropy are already one kernel (and one node)";
    case "dropout":
      return "dropout is its own kernel in training (a mask from the step's seed; an identity at inference): only relu or a bare conv / dense take it as an epilogue";
    default:
      return `${n.attrs.op} is not an anchor (conv and dense absorb element-wise layers, a max-pool the LRN before it)`;
  }
}

/**
 * The fused group that `node` anchors, as its kernels compute it: a dropout epilogue only where
 * `active(dropout)` holds (training, the dropout applied); elsewhere the dropout is the identity, an
 * alias of the group's output without it. Undefined unless `node` anchors a group of two or more.
 */
export function fusedAt(
  fusion: Fusion,
  node: string,
  active: (dropout: string) => boolean = () => false,
): FusedGroup | undefined {
  const g = fusion.groups.find((x) => x.anchor === node);
  if (!g) return undefined;
  if (g.dropout && !active(g.dropout.node)) {
    const members = g.members.filter((m) => m !== g.dropout!.node);
    const { dropout, ...rest } = g;
    return members.length > 1
      ? { ...rest, name: members.join("+"), members, output: dropout.input }
      : undefined;
  }
  return g.members.length > 1 ? g : undefined;
}

/** The anchor whose kernels compute `node` (same `active` rule as fusedAt), if another layer's. */
export function computedBy(
  fusion: Fusion,
  node: string,
  active: (dropout: string) => boolean = () => false,
): string | undefined {
  const anchor = fusion.absorbedInto[node];
  return anchor && fusedAt(fusion, anchor, active)?.members.includes(node) ? anchor : undefined;
}

/** `--explain-fusion`: each group on a line with its members, then the reason it ends. */
export function explainFusion(fusion: Fusion): string {
  const reasonAfter = new Map(fusion.boundaries.map((b) => [b.after, b.reason]));
  const width = Math.max(...fusion.groups.map((g) => g.name.length));
  const lines = fusion.groups.map((g) => {
    const last = g.members[g.members.length - 1];
    return `${g.name.padEnd(width)}  ${describe(g)}; ends: ${reasonAfter.get(last) ?? "(end of graph)"}`;
  });
  const fused = fusion.groups.filter((g) => g.members.length > 1).length;
  const nodes = fusion.groups.reduce((a, g) => a + g.members.length, 0);
  return [`${fusion.groups.length} groups for ${nodes} layers (${fused} fused)`, ...lines].join("\n");
}

function describe(g: FusedGroup): string {
  if (g.prologue)
    return (
      `${g.anchor} computes ${g.prologue.node}'s LRN in its loads (never stored); ` +
      `in training it also writes the arg-max its backward reads`
    );
  if (!g.epilogue && !g.dropout) return "alone";
  const epilogue = g.epilogue ? `${g.epilogue.op} epilogue` : "no activation";
  const mask = g.dropout
    ? ` and ${g.dropout.node}'s mask in training (${g.dropout.input} never stored${
        g.epilogue ? `: its derivative reads ${g.dropout.node}` : ""
      }; the identity at inference)`
    : "";
  return `${g.anchor} with ${epilogue}${mask}`;
}
