// Text tables for `alexc info --placement`: one strategy per device, or all three side by side.
// The JSON form is the Placement records themselves (compiler/place.ts).
import type { DeviceLoad, Placement, Strategy, TransferOp } from "./place.ts";

const num = (n: number) => Math.round(n).toLocaleString("en-US");

/** Right-aligned value columns after `labels` left-aligned label columns, two spaces apart. */
function table(header: string[], rows: string[][], labels = 1): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < labels ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)];
}

const metrics: [string, (l: DeviceLoad) => number][] = [
  ["forward FLOPs", (l) => l.flops.forward],
  ["backward FLOPs", (l) => l.flops.backward],
  ["update FLOPs", (l) => l.flops.update],
  ["FLOPs per step", (l) => l.flops.total],
  ["parameter bytes", (l) => l.paramBytes],
  ["activation bytes", (l) => l.activationBytes],
  ["bytes sent", (l) => l.sent.total],
  ["bytes received", (l) => l.received.total],
];

const describe: Record<Strategy, string> = {
  model: "the paper's split: tower t on device t, cross-tower layers receive the other tower's maps",
  data: "each device runs the whole network on half the batch; parameter gradients exchanged",
  hybrid: "convolutional layers data-parallel, fully connected layers model-parallel (Krizhevsky 2014)",
};

/** One tensor per line, grouping the gradient-sum ops (one per parameter tensor) by direction. */
function transferLines(transfers: TransferOp[]): string[] {
  const rows: string[][] = [];
  const sums = new Map<string, { count: number; bytes: number }>();
  for (const t of transfers) {
    if (t.phase === "gradient-sum") {
      const key = `${t.from}→${t.to}`;
      const s = sums.get(key) ?? { count: 0, bytes: 0 };
      sums.set(key, { count: s.count + 1, bytes: s.bytes + t.bytes });
    } else rows.push([t.phase, t.tensor, `${t.from} → ${t.to}`, num(t.bytes)]);
  }
  for (const [key, s] of sums)
    rows.push(["gradient-sum", `${s.count} parameter gradients`, key.replace("→", " → "), num(s.bytes)]);
  if (rows.length === 0) return ["no transfers: the devices never exchange data"];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) =>
    [r[0].padEnd(widths[0]), r[1].padEnd(widths[1]), r[2].padEnd(widths[2]), r[3].padStart(widths[3]) + " B"]
      .join("  ")
      .trimEnd(),
  );
}

export function formatPlacement(p: Placement): string {
  const header = ["per training step", ...p.devices.map((d) => `device ${d.device}`), "total"];
  const total = (f: (l: DeviceLoad) => number) => p.devices.reduce((s, l) => s + f(l), 0);
  const rows = metrics.map(([label, f]) => [label, ...p.devices.map((l) => num(f(l))), num(total(f))]);
  return [
    `placement ${p.strategy} — ${p.network}, batch ${p.batch}, ${p.devices.length} devices`,
    `  ${describe[p.strategy]}`,
    "",
    ...table(header, rows),
    "",
    "transfers:",
    ...transferLines(p.transfers).map((l) => `  ${l}`),
  ].join("\n");
}

/** The strategies side by side: each metric for device 0, device 1 and their total. */
export function formatPlacements(
  placements: Placement[],
  skipped: { strategy: Strategy; reason: string }[] = [],
): string {
  const first = placements[0];
  const header = ["per training step", "", ...placements.map((p) => p.strategy)];
  const rows: string[][] = [];
  for (const [label, f] of metrics) {
    for (const d of first?.devices.keys() ?? [])
      rows.push([d === 0 ? label : "", `device ${d}`, ...placements.map((p) => num(f(p.devices[d])))]);
    rows.push(["", "total", ...placements.map((p) => num(p.devices.reduce((s, l) => s + f(l), 0)))]);
  }
  const lines = first
    ? [
        `placements — ${first.network}, batch ${first.batch}, ${first.devices.length} devices`,
        ...placements.map((p) => `  ${p.strategy.padEnd(6)}  ${describe[p.strategy]}`),
        "",
        ...table(header, rows, 2),
      ]
    : ["no placement applies to this network"];
  for (const s of skipped) lines.push(`note: ${s.strategy} skipped: ${s.reason}`);
  return lines.join("\n");
}
