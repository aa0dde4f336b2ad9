// Seeded randomness for the front-end fuzzer, and a generator of networks that mostly make sense
// (real layer kinds chained shape by shape, plausible attributes with the odd one at or past an
// edge), so that the checker's later stages, the lint rules on graphs and the fix-its are reached.
/** mulberry32: small, fast, and good enough to pick mutations. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** The generator state for input `index` of a run seeded `seed`. */
export function inputRng(seed: number, index: number): Rng {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 0x632be5ab, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  return new Rng(h ^ (h >>> 15));
}

// ---- generated networks that mostly make sense --------------------------------------------------

/** Attribute values: usually plausible, sometimes at or past an edge. */
function attrValue(rng: Rng, plausible: readonly string[]): string {
  if (rng.chance(0.96)) return rng.pick(plausible);
  return rng.pick([
    "0",
    "-1",
    "1.5",
    "2147483647",
    "2147483648",
    "9007199254740993",
    "1e308",
    "1e308 * 10",
    "1e-320",
    "(3, 2)",
    "(0, 0)",
    "(1, 2, 3)",
    "on(0)",
    "on(1)",
    "on(7)",
    "local",
    "cross",
    "none",
    "ceil",
    "normal(0.01)",
    "normal(0, -1)",
    "constant(0)",
    '"s"',
    "[1, 2]",
    "c0",
    "image",
    "2 * 3 - 1",
    "1 / 0",
    "-(-2)",
    "sum",
    "mean",
    "true",
  ]);
}

const spatialKinds = [
  "conv",
  "conv",
  "relu",
  "tanh",
  "sigmoid",
  "lrn",
  "maxpool",
  "avgpool",
  "dropout",
  "batchnorm",
  "concat",
];
const vectorKinds = ["dense", "dense", "relu", "dropout", "softmax", "batchnorm", "tanh"];

function layerText(kind: string, inputs: string[], rng: Rng, classes: string): string {
  const a = (name: string, plausible: readonly string[]) => `${name}: ${attrValue(rng, plausible)}`;
  const attrs: string[] = [];
  const maybe = (p: number, attr: () => string) => {
    if (rng.chance(p)) attrs.push(attr());
  };
  switch (kind) {
    case "conv":
      attrs.push(
        a("filters", ["4", "8", "16", "6", "96", "3"]),
        a("kernel", ["1", "3", "5", "11", "(3, 1)"]),
      );
      maybe(0.5, () => a("stride", ["1", "2", "4", "(2, 1)"]));
      maybe(0.5, () => a("pad", ["0", "1", "2", "(1, 0)"]));
      maybe(0.3, () => a("towers", ["local", "cross", "on(0)", "on(1)"]));
      maybe(0.3, () => a("init", ["normal(0.01)", "normal(0, 0.01)", "constant(0)", "c0", "normal(10)"]));
      maybe(0.3, () => a("bias", ["0", "1", "none"]));
      maybe(0.2, () => a("round", ["floor", "ceil"]));
      break;
    case "dense":
      attrs.push(a("units", [classes, "16", "4096", "10", "7"]));
      maybe(0.3, () => a("towers", ["local", "cross", "on(0)"]));
      maybe(0.3, () => a("init", ["normal(0.01)", "constant(0)", "c0"]));
      maybe(0.3, () => a("bias", ["0", "1", "none"]));
      break;
    case "lrn":
      maybe(0.5, () => a("size", ["5", "4", "3"]));
      maybe(0.3, () => a("alpha", ["1e-4", "0"]));
      maybe(0.3, () => a("beta", ["0.75"]));
      maybe(0.2, () => a("alpha_of", ["sum", "mean"]));
      break;
    case "maxpool":
    case "avgpool":
      attrs.push(a("window", ["2", "3", "(3, 2)"]));
      maybe(0.5, () => a("stride", ["1", "2"]));
      maybe(0.2, () => a("pad", ["0", "1"]));
      maybe(0.2, () => a("round", ["floor", "ceil"]));
      break;
    case "dropout":
      maybe(0.7, () => a("p", ["0.5", "0", "0.1", "0.9"]));
      break;
    case "batchnorm":
      maybe(0.3, () => a("eps", ["1e-5"]));
      break;
  }
  if (rng.chance(0.005)) attrs.push(a(rng.pick(["filtres", "unit", "strides", "bogus"]), ["1"]));
  const args = [...inputs, ...attrs];
  return `${kind}(${args.join(", ")})`;
}

/** `count` entries, each key at most once (mostly: a repeated key is one finding, not the point). */
function pickSome(entries: readonly string[], count: number, rng: Rng): string[] {
  const byKey = new Map<string, string>();
  for (let i = 0; i < count; i++) {
    const entry = rng.pick(entries);
    byKey.set(rng.chance(0.95) ? entry.split(":")[0] : String(i), `  ${entry}`);
  }
  return [...byKey.values()];
}

export function network(rng: Rng): string {
  const out: string[] = [];
  const line = (s: string) => out.push(`  ${s}`);
  const classCount = rng.pick(["10", "1000", "2"]);
  const classes = rng.chance(0.5) ? "classes" : classCount;
  const dims = rng.chance(0.9)
    ? `${rng.pick([1, 3, 4, 8])}, ${rng.range(1, 40)}, ${rng.range(1, 40)}`
    : rng.pick([
        "3",
        "3, 32",
        "0, 4, 4",
        "2147483647, 2147483647, 2147483647",
        "100000, 100000, 100000",
        "1e400",
      ]);
  out.push(`network net${rng.int(100)} {`);
  line(`input image: f32[${dims}]`);
  line(`classes: ${attrValue(rng, [classCount])}`);
  if (rng.chance(0.5)) line(`towers: ${attrValue(rng, ["1", "2"])}`);
  if (rng.chance(0.4)) line(`const c0 = ${attrValue(rng, ["normal(0, 0.01)", "4", "0.5"])}`);
  let blockName: string | undefined;
  if (rng.chance(0.25)) {
    blockName = "stage";
    const body = [
      "y = conv(x, filters: f, kernel: 3, pad: 1)",
      "z = relu(y)",
      "w = stage(z)",
      "p = maxpool(z, window: 2)",
    ];
    const inner = body.slice(0, rng.range(1, 4)).filter((l) => !l.includes("stage(") || rng.chance(0.05));
    line(`block stage(x, f = ${attrValue(rng, ["8", "4"])}) {`);
    for (const l of inner) line(`  ${l}`);
    line("}");
  }
  let current = "image";
  let isMap = !/^\s*\d+\s*$/.test(dims);
  const names = ["image"];
  const layers = rng.range(0, rng.chance(0.1) ? 60 : 12);
  for (let i = 0; i < layers; i++) {
    const name = `l${i}`;
    if (rng.chance(0.08))
      line(rng.pick(["# alexc-disable-next-line", "# alexc-disable-next-line unused_layer", "// note"]));
    if (blockName && rng.chance(0.15)) line(`${name} = stage(${current}${rng.chance(0.3) ? ", f: 16" : ""})`);
    else if (isMap && rng.chance(0.08)) {
      line(`${name} = flatten(${current})`);
      isMap = false;
    } else {
      const kind = rng.pick(isMap ? spatialKinds : vectorKinds);
      const inputs =
        kind === "concat" ? [current, rng.pick(names)] : [rng.chance(0.9) ? current : rng.pick(names)];
      const suffix = rng.chance(0.05) ? " # alexc-disable-line" : "";
      line(`${name} = ${layerText(kind, inputs, rng, classes)}${suffix}`);
    }
    names.push(name);
    current = name;
  }
  if (isMap) {
    line(`flat = flatten(${current})`);
    current = "flat";
  }
  line(`logits = dense(${current}, units: ${classes})`);
  if (rng.chance(0.9)) line("loss = softmax_cross_entropy(logits)");
  out.push("}");
  if (rng.chance(0.4)) {
    const entries = [
      "batch: 128",
      "epochs: 90",
      "lr: 0.01",
      "lr: 1e-9",
      "momentum: 0.9",
      "momentum: 0.999",
      "weight_decay: 0.0005",
      "schedule: plateau(2, 10)",
      "schedule: step(30)",
      "schedule: constant",
      "max_drops: 3",
      "dropout: [l1, l2]",
      "seed: 1",
      "eval_every: 1",
      "devices: 2",
      "devices: 3",
      "placement: model",
      "placement: data",
      "placement: hybrid",
      "batch: 7",
      "bogus: 1",
    ];
    out.push("train {", ...pickSome(entries, rng.range(0, 6), rng), "}");
  }
  if (rng.chance(0.2)) {
    const entries = [
      "dataset: fashion_mnist",
      'dir: "data"',
      "validation: 5000",
      "crop: 2",
      "flip: true",
      "dataset: imagenet",
    ];
    out.push("data {", ...pickSome(entries, rng.range(0, 4), rng), "}");
  }
  return `${out.join("\n")}\n`;
}
