// Input generators for fuzzing the front end (bench/fuzz.ts, test/compiler/frontend-fuzz.test.ts).
// Each input is a pure function of (seed, index), so any one of 100,000 inputs can be regenerated
// alone: `npm run bench:fuzz -- --seed S --start I --count 1`.
import { readdirSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { commentBody, Layout, layOut, layoutChoices, sourceFile } from "../grammar/arbitraries.ts";
import { inputRng, network, type Rng } from "./fuzz-network.ts";

export { inputRng, network, Rng } from "./fuzz-network.ts";

const modelsDir = new URL("../../models/", import.meta.url);
export const models: readonly string[] = readdirSync(modelsDir)
  .filter((f) => f.endsWith(".net"))
  .sort()
  .map((f) => readFileSync(new URL(f, modelsDir), "utf8"));

/** Pieces of the language (and of near misses) spliced into models and strung into soups. */
// prettier-ignore
export const fragments = [
  "network", "input", "const", "block", "train", "data", "conv", "dense", "relu", "lrn", "maxpool",
  "avgpool", "dropout", "batchnorm", "flatten", "concat", "softmax", "softmax_cross_entropy", "x",
  "image", "f32", "on", "local", "cross", "ceil", "floor", "none", "normal", "constant", "classes",
  "towers", "filters", "kernel", "stride", "pad", "units", "window", "p", "size", "bias", "init",
  "{", "}", "(", ")", "[", "]", ",", ":", "=", "+", "-", "*", "/", "\\", ".", "@", "$",
  "0", "1", "2", "96", "-1", "0.75", "1e-4", ".5", "1.", "1e", "2.5", "1e308", "1e400", "-1e400",
  "2147483647", "2147483648", "9007199254740993", "1e308 * 10", "96 / 0", "0 / 0",
  '"s"', '"a\\"b"', '"open', '""',
  "(0, 3)", "[1, 2]", "on(5)", "on(-1)", "on(0)", "normal(0, 0.01)", "constant(1e400)",
  "dense(", "block b(x) { y = b(x) }", "block b(x, f = 1) { c = conv(x, filters: f, kernel: 3) }",
  "towers: 3", "const c = c", "relu(relu1)", "filters: 7", "kernel: 300", "stride: 0",
  "pad: (9, 9)", "softmax_cross_entropy(fc8)", "network n {", "train {", "data {", "input x: f32[]",
  "input y: f32[1, 1, 1]", "y = flatten(image)", "units: 2147483647",
  "# alexc-disable-next-line", "# alexc-disable-line unused_layer", "// alexc-disable-line AX5001, nope -- why",
  "# c", "// c", "#", "\n", "\r\n", "\r", " ", "\t", "\u2028", "\u0000", "\ufeff", "é", "😀", "\ud800",
];

// ---- mutations of the models --------------------------------------------------------------------

const oddChars = [
  ..."{}()[],:=+-*/#\"\\.0123456789eE_ \t\n\r@$`'~!?;<>|&^%",
  "\u0000",
  "\u00a0",
  "\u2028",
  "\ufeff",
  "é",
  "😀",
  "\udc00",
];

type Mutator = (text: string, rng: Rng) => string;

const at = (text: string, rng: Rng) => rng.int(text.length + 1);

const mutators: Record<string, Mutator> = {
  charFlip: (text, rng) => {
    const i = at(text, rng);
    return text.slice(0, i) + rng.pick(oddChars) + text.slice(i + 1);
  },
  bitFlip: (text, rng) => {
    const i = rng.int(Math.max(1, text.length));
    const code = (text.charCodeAt(i) || 0) ^ (1 << rng.int(16));
    return text.slice(0, i) + String.fromCharCode(code) + text.slice(i + 1);
  },
  delete: (text, rng) => {
    const i = at(text, rng);
    return text.slice(0, i) + text.slice(i + rng.range(1, rng.chance(0.8) ? 8 : 200));
  },
  duplicate: (text, rng) => {
    const i = at(text, rng);
    const piece = text.slice(i, i + rng.range(1, 120));
    const j = at(text, rng);
    return text.slice(0, j) + piece + text.slice(j);
  },
  splice: (text, rng) => {
    const i = at(text, rng);
    const cut = rng.chance(0.5) ? 0 : rng.range(1, 12);
    return text.slice(0, i) + rng.pick(fragments) + text.slice(i + cut);
  },
  crossover: (text, rng) => {
    const other = rng.pick(models);
    const i = at(text, rng);
    const j = at(other, rng);
    return text.slice(0, i) + other.slice(j, j + rng.range(1, 400));
  },
  swapLines: (text, rng) => {
    const lines = text.split("\n");
    const a = rng.int(lines.length);
    const b = rng.int(lines.length);
    [lines[a], lines[b]] = [lines[b], lines[a]];
    return lines.join("\n");
  },
  shuffleLines: (text, rng) => {
    const lines = text.split("\n");
    const start = rng.int(lines.length);
    const run = lines.slice(start, start + rng.range(2, 10));
    for (let i = run.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [run[i], run[j]] = [run[j], run[i]];
    }
    lines.splice(start, run.length, ...run);
    return lines.join("\n");
  },
  dropLine: (text, rng) => {
    const lines = text.split("\n");
    lines.splice(rng.int(lines.length), 1);
    return lines.join("\n");
  },
  duplicateLine: (text, rng) => {
    const lines = text.split("\n");
    const i = rng.int(lines.length);
    lines.splice(rng.int(lines.length), 0, lines[i]);
    return lines.join("\n");
  },
};
const mutatorNames = Object.keys(mutators);

export function mutate(text: string, rng: Rng, count: number): string {
  for (let k = 0; k < count; k++) text = mutators[rng.pick(mutatorNames)](text, rng);
  return text;
}

// ---- the generators -------------------------------------------------------------------------------

const grammarArbitrary = fc.tuple(
  sourceFile,
  layoutChoices,
  fc.array(commentBody, { minLength: 1, maxLength: 4 }),
);

function nestedValue(rng: Rng, depth: number): string {
  if (depth === 0) return rng.pick(["1", "x", "normal(0.01)", "1e400", ""]);
  const inner = nestedValue(rng, depth - 1);
  return rng.pick([
    `(${inner})`,
    `[${inner}]`,
    `-${inner}`,
    `-(${inner})`,
    `f(${inner})`,
    `(${inner}, 1)`,
    `${inner} * 2`,
  ]);
}

function unicodeText(rng: Rng): string {
  const ranges: [number, number][] = [
    [0x20, 0x7e],
    [0x0, 0x1f],
    [0x7f, 0x9f],
    [0xa0, 0x2ff],
    [0x2000, 0x206f],
    [0xd800, 0xdfff],
    [0xfe00, 0xffff],
    [0x10000, 0x10ffff],
    [0x4e00, 0x9fff],
  ];
  let s = "";
  const length = rng.range(0, 300);
  while (s.length < length) {
    const [lo, hi] = rng.pick(ranges);
    s += rng.chance(0.2) ? rng.pick(fragments) : String.fromCodePoint(rng.range(lo, hi));
  }
  return s;
}

export type Generator = (rng: Rng) => string;

/** Each generator with its weight in the mix. */
export const generators: Record<string, { weight: number; make: Generator }> = {
  mutation: { weight: 30, make: (rng) => mutate(rng.pick(models), rng, rng.range(1, 6)) },
  network: {
    weight: 20,
    make: (rng) => (rng.chance(0.3) ? mutate(network(rng), rng, rng.range(1, 2)) : network(rng)),
  },
  grammar: {
    weight: 15,
    make: (rng) => {
      const [file, choices, bodies] = fc.sample(grammarArbitrary, { seed: rng.int(2 ** 31), numRuns: 1 })[0];
      const layout = new Layout(choices, bodies);
      layOut(file, layout);
      return layout.text();
    },
  },
  tokenSoup: {
    weight: 10,
    make: (rng) => {
      const separator = rng.pick(["", " ", "\n", () => rng.pick([" ", "", "\n", "\t"])]);
      const words = Array.from({ length: rng.range(0, 120) }, () => rng.pick(fragments));
      return typeof separator === "string"
        ? words.join(separator)
        : words.map((w) => w + separator()).join("");
    },
  },
  lineEndings: {
    weight: 10,
    make: (rng) => {
      const base = rng.chance(0.5) ? rng.pick(models) : network(rng);
      const lines = base.split(/\r\n|\r|\n/);
      const style = rng.pick(["\r\n", "\r", "mixed"]);
      const text = lines
        .map(
          (l, i) =>
            l + (i === lines.length - 1 ? "" : style === "mixed" ? rng.pick(["\n", "\r\n", "\r"]) : style),
        )
        .join("");
      return rng.chance(0.4) ? mutate(text, rng, rng.range(1, 3)) : text;
    },
  },
  unicode: { weight: 8, make: unicodeText },
  nesting: {
    weight: 7,
    make: (rng) => {
      // Around MAX_NESTING (64), where the parser starts dropping tokens.
      const value = nestedValue(rng, rng.range(1, rng.chance(0.5) ? 20 : 80));
      const model = rng.pick(models);
      const i = model.indexOf("\n  ", model.indexOf("{"));
      const statement = rng.pick([`const deep = ${value}`, `d = relu(${value})`, `classes: ${value}`]);
      return `${model.slice(0, i)}\n  ${statement}${model.slice(i)}`;
    },
  },
};

const names = Object.keys(generators);
const totalWeight = names.reduce((sum, n) => sum + generators[n].weight, 0);

/** Input `index` of a run seeded `seed`: which generator made it, and the text. */
export function generateInput(seed: number, index: number): { generator: string; text: string } {
  const rng = inputRng(seed, index);
  let ticket = rng.int(totalWeight);
  let generator = names[0];
  for (const name of names) {
    ticket -= generators[name].weight;
    if (ticket < 0) {
      generator = name;
      break;
    }
  }
  return { generator, text: generators[generator].make(rng) };
}
