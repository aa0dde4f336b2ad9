// The one catalogue of alexc diagnostics, like TypeScript's diagnosticMessages.json.
// Codes are blocked by phase and never renumbered:
//   AX1xxx syntax · AX2xxx names, attributes and shapes · AX3xxx placement and device limits
//   AX4xxx code generation and runtime · AX5xxx lint · AX9xxx internal
// A test fails on duplicate codes, unused entries and entries no test triggers.
import type { Span } from "../grammar/ast.ts";

export type Severity = "error" | "warning" | "info";

export interface CatalogueEntry {
  severity: Severity;
  /** `{name}` placeholders are filled from the arguments; names are quoted with backticks by the caller. */
  template: string;
}

export const catalogue = {
  // ---- AX1: syntax ----
  AX1001: { severity: "error", template: "expected {expected}, found {found}" },
  AX1002: { severity: "error", template: "unterminated string" },
  AX1003: { severity: "error", template: "unexpected character {char}" },
  AX1004: { severity: "error", template: "number {text} is not a finite 64-bit float" },
  AX1005: { severity: "error", template: "a file holds exactly one `network`, found {count}" },
  AX1006: { severity: "error", template: "the file exceeds alexc's limit of {limit}" },

  // ---- AX2: names, attributes, shapes ----
  AX2001: { severity: "error", template: "unknown layer kind `{name}`" },
  AX2002: { severity: "error", template: "unknown attribute `{attr}` for `{op}`" },
  AX2003: { severity: "error", template: "`{op}` needs the attribute `{attr}`" },
  AX2004: { severity: "error", template: "attribute `{attr}` of `{op}` {problem}" },
  AX2005: { severity: "error", template: "`{op}` takes {expected} input(s), got {got}" },
  AX2006: { severity: "error", template: "unknown name `{name}`" },
  AX2007: { severity: "error", template: "`{name}` is used before it is defined" },
  AX2008: { severity: "error", template: "`{name}` is defined twice" },
  AX2009: { severity: "error", template: "`{name}` reads its own output (a cycle)" },
  AX2010: { severity: "error", template: "`{name}` has an empty output: {detail}" },
  AX2011: {
    severity: "error",
    template: "{what} of `{name}` ({count}) is not divisible by the {towers} towers",
  },
  AX2012: { severity: "error", template: "network `{name}` has no loss layer" },
  AX2013: { severity: "error", template: "unknown dtype `{dtype}`; alexc supports `f32`" },
  AX2014: { severity: "error", template: "network `{name}` needs {what}" },
  AX2015: { severity: "error", template: "block `{block}` needs the argument `{param}`" },
  AX2016: { severity: "error", template: "block `{block}` has no parameter `{param}`" },
  AX2017: {
    severity: "error",
    template: "`{name}` reads only its own tower (`towers: local`) but its input `{input}` is {layout}",
  },
  AX2018: { severity: "error", template: "`{name}` expects {expected}, got {got}" },
  AX2019: {
    severity: "error",
    template: "the loss reads {got} values per example but the network has {classes} classes",
  },
  AX2020: { severity: "error", template: "{what} is not a finite number" },
  AX2021: { severity: "error", template: "attribute `{attr}` is given twice" },
  AX2022: { severity: "error", template: "block `{block}` calls itself" },
  AX2023: { severity: "error", template: "`{name}` is a {is}, expected a {expected}" },
  AX2024: { severity: "error", template: "tower {tower} does not exist; the network has {towers} tower(s)" },
  AX2025: { severity: "warning", template: "`{section}` entry `{key}` is not used yet" },
  AX2026: {
    severity: "error",
    template: "the network has more than one loss layer (`{first}` and `{second}`)",
  },
  AX2027: { severity: "error", template: "unknown property `{name}`" },
  AX2028: { severity: "error", template: "`{name}`'s input `{input}` has {got}, expected {expected}" },
  AX2029: { severity: "error", template: "`{name}` is not a dropout layer of the network" },
  AX2030: { severity: "error", template: "{what} exceeds alexc's limit of {limit}" },
  AX2031: { severity: "error", template: "`data` entry `{key}` does not apply to `dataset: {dataset}`" },
  AX2032: { severity: "error", template: "the network's input {input} {problem}" },

  // ---- AX3: placement and device limits ----
  AX3001: {
    severity: "error",
    template: "`{tensor}` needs a {bytes}-byte binding but {device} allows at most {limit} bytes",
  },
  AX3003: {
    severity: "error",
    template:
      "placement `{strategy}` puts tower t on device t: it needs a network with {devices} towers, `{network}` has {towers}",
  },
  AX3004: { severity: "error", template: "no WebGPU adapter matches `{selector}`; available: {available}" },
  AX3005: {
    severity: "warning",
    template:
      "opened {opened} of {count} WebGPU devices ({reason}); the towers share the devices that opened",
  },

  AX3007: {
    severity: "error",
    template: "the plan needs {peak} of memory on {device} but the budget is {budget}",
  },

  // ---- AX4: code generation and runtime ----
  AX4001: { severity: "error", template: "WebGPU rejected kernel `{kernel}` of layer `{layer}`: {message}" },
  AX4002: {
    severity: "error",
    template: "out of memory on {device} while running kernel `{kernel}` of layer `{layer}`",
  },
  AX4003: { severity: "error", template: "device {device} was lost ({reason}) while running `{kernel}`" },
  AX4004: { severity: "error", template: "no WebGPU adapter found" },
  AX4005: { severity: "error", template: "weights file {file}: {problem}" },
  AX4006: { severity: "error", template: "input file {file}: {problem}" },
  AX4007: { severity: "error", template: "cannot export `{name}` to ONNX: {problem}" },
  AX4008: {
    severity: "error",
    template: "the plan stores tensors as {dtype}, but {device} lacks the WebGPU feature `{feature}`",
  },
  // AX41xx: training runtime (data sets, checkpoints, metrics)
  AX4101: { severity: "error", template: "Fashion-MNIST {file}: {problem}" },
  AX4102: { severity: "error", template: "checkpoint {path}: {problem}" },
  AX4103: {
    severity: "warning",
    template: "checkpoint {path} is damaged ({problem}); resuming from {fallback} instead",
  },
  AX4104: { severity: "error", template: "metrics file {file}: {problem}" },
  AX4105: { severity: "error", template: "image folder {root}: {problem}" },
  AX4106: { severity: "warning", template: "image folder {root}: {problem}" },

  // ---- AX5: lint (compiler/lint; severities are defaults, alexc.json may change them) ----
  AX5001: { severity: "warning", template: "layer `{name}` is never used" },
  AX5002: { severity: "warning", template: "constant `{name}` is never used" },
  AX5003: { severity: "warning", template: "block `{name}` is never used" },
  AX5004: { severity: "warning", template: "parameter `{param}` of block `{block}` is never used" },
  AX5005: {
    severity: "warning",
    template: "the towers are unbalanced: tower {heavy} has {excess} than tower {light}",
  },
  AX5006: { severity: "info", template: "`{name}` {actual}, where the paper's {layer} {expected}" },
  AX5007: { severity: "warning", template: "`{name}` never reads the last {unread} of `{input}`" },
  AX5008: {
    severity: "warning",
    template:
      "`{name}` steps {stride} but its window is {window} wide: {skipped} of every {stride} {axis} are never read",
  },
  AX5009: {
    severity: "warning",
    template: "`{lrn}` normalises `{input}` before the ReLU `{relu}`; the paper applies LRN after it",
  },
  AX5010: {
    severity: "warning",
    template: "`{second}` follows `{first}` with no non-linearity between them",
  },
  AX5011: {
    severity: "warning",
    template: "`{loss}` applies softmax to `{name}`, which is already a softmax",
  },
  AX5012: { severity: "info", template: "the bias of `{name}` is cancelled by the batch norm `{norm}`" },
  AX5013: { severity: "warning", template: "`{name}` has an even LRN size ({size})" },
  AX5014: {
    severity: "warning",
    template: "dropout `{name}` drops single pixels of the feature map `{input}`",
  },
  AX5015: { severity: "warning", template: "dropout `{name}` never drops anything: {reason}" },
  AX5016: { severity: "warning", template: "learning rate {value} is far outside the usual range {range}" },
  AX5017: { severity: "warning", template: "momentum {value} is far outside the usual range {range}" },
  AX5018: { severity: "warning", template: "weight decay {value} is far outside the usual range {range}" },
  AX5019: {
    severity: "error",
    template: "batch {batch} does not divide over {devices} devices under `{placement}` placement",
  },
  AX5020: { severity: "warning", template: "{what} never changes the learning rate: {reason}" },
  AX5021: {
    severity: "error",
    template: "the recipe trains on {devices} devices with `{placement}` placement, but {problem}",
  },
  AX5022: {
    severity: "warning",
    template: "the initial weights of `{name}` ({init}) will saturate the {activation} `{act}`",
  },
  AX5023: {
    severity: "warning",
    template: "every weight of `{name}` starts at {value}, so its {units} stay identical",
  },
  AX5024: {
    severity: "warning",
    template: "{what} is {bytes}, larger than the {limit} one storage binding may hold",
  },
  AX5025: {
    severity: "warning",
    template: "{kind} `{name}` shadows the word `{name}` that attributes such as `{attr}` accept",
  },
  AX5026: { severity: "warning", template: "this comment suppresses {codes}, but nothing here reports it" },
  AX5027: { severity: "warning", template: "`{code}` in a suppression comment is not a lint rule" },
  AX5090: { severity: "error", template: "invalid lint configuration: {problem}" },

  // ---- AX9: internal ----
  AX9001: { severity: "error", template: "internal error (this is a bug in alexc): {message}" },
} as const satisfies Record<string, CatalogueEntry>;

export type Code = keyof typeof catalogue;

/** A text edit: replace `span` with `text`. */
export interface TextEdit {
  span: Span;
  text: string;
}

export interface Fix {
  description: string;
  edits: TextEdit[];
  /** `safe`: `--fix` may apply it unattended; `maybe`: offered to editors only. */
  applicability: "safe" | "maybe";
}

export interface Label {
  span: Span;
  message: string;
}

/** Diagnostics are data; rendering lives in compiler/render.ts. */
export interface Diagnostic {
  code: Code;
  severity: Severity;
  message: string;
  /** Absent only for diagnostics about no particular place (a missing file, a device). */
  span?: Span;
  labels: Label[];
  notes: string[];
  help?: string;
  fix?: Fix;
}

export interface DiagnosticExtras {
  labels?: Label[];
  notes?: string[];
  help?: string;
  fix?: Fix;
}

/** Builds a diagnostic from the catalogue; every argument named in the template must be given. */
export function diag(
  code: Code,
  args: Record<string, string | number>,
  span: Span | undefined,
  extras: DiagnosticExtras = {},
): Diagnostic {
  const entry: CatalogueEntry = catalogue[code];
  const message = entry.template.replace(/\{(\w+)\}/g, (_, key: string) => {
    if (!(key in args)) throw new Error(`diagnostic ${code}: missing argument ${key}`);
    return String(args[key]);
  });
  return {
    code,
    severity: entry.severity,
    message,
    span,
    labels: extras.labels ?? [],
    notes: extras.notes ?? [],
    help: extras.help,
    fix: extras.fix,
  };
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === "error");
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/**
 * `editDistance(a, b)` when it is at most `max`, else `max + 1`: only the diagonal band |i − j| ≤ max
 * is computed, and a row past `max` stops it, so two 100,000-character names cost a few hundred
 * thousand steps rather than 10^10.
 */
function boundedDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  const far = max + 1;
  const width = 2 * max + 1;
  // previous[k] and row[k] hold the distance of the prefixes a[0, i) and b[0, j) for j = i + k − max.
  let previous = Array.from({ length: width }, (_, k) => (k >= max && k - max <= b.length ? k - max : far));
  for (let i = 1; i <= a.length; i++) {
    const row = new Array<number>(width).fill(far);
    let best = far;
    for (let k = 0; k < width; k++) {
      const j = i + k - max;
      if (j < 0 || j > b.length) continue;
      if (j === 0) row[k] = Math.min(i, far);
      else {
        const above = k + 1 < width ? previous[k + 1] : far;
        const left = k > 0 ? row[k - 1] : far;
        row[k] = Math.min(above + 1, left + 1, previous[k] + (a[i - 1] === b[j - 1] ? 0 : 1), far);
      }
      best = Math.min(best, row[k]);
    }
    if (best > max) return far;
    previous = row;
  }
  return previous[b.length - a.length + max];
}

/** "did you mean" candidates within edit distance 1–2, at most two, closest first (Elm's rule). */
export function similarNames(name: string, candidates: Iterable<string>): string[] {
  const scored: [string, number][] = [];
  for (const candidate of new Set(candidates)) {
    const d = boundedDistance(name, candidate, 2);
    if (d >= 1 && d <= 2 && d < Math.max(name.length, candidate.length)) scored.push([candidate, d]);
  }
  return scored
    .sort((x, y) => x[1] - y[1] || x[0].localeCompare(y[0]))
    .slice(0, 2)
    .map(([candidate]) => candidate);
}

export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  const similar = similarNames(name, candidates);
  if (similar.length === 0) return undefined;
  return `did you mean ${similar.map((s) => `\`${s}\``).join(" or ")}?`;
}

/**
 * Carries diagnostics out of a stage that cannot continue (the runtime, a file reader). The CLI
 * renders them; nothing shows a raw stack trace to the user.
 */
export class DiagnosticError extends Error {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic | Diagnostic[]) {
    const list = Array.isArray(diagnostics) ? diagnostics : [diagnostics];
    super(list.map((d) => `${d.code}: ${d.message}`).join("\n"));
    this.name = "DiagnosticError";
    this.diagnostics = list;
  }
}
