// `alexc devices`: the WebGPU adapters Dawn can reach and the figures alexc sizes its plans by. It
// takes no FILE, so compiler/cli.ts dispatches it before reading a network.
import type { AdapterListing, GpuFactory } from "../runtime/devices.ts";

const num = (n: number) => n.toLocaleString("en-US");
const mib = (n: number) => `${num(n)} (${(n / 2 ** 20).toFixed(0)} MiB)`;

export function formatAdapters(listing: AdapterListing): string {
  const lines: string[] = [];
  for (const a of listing.adapters) {
    const features = Object.entries(a.features)
      .map(([name, has]) => `${name} ${has ? "yes" : "no"}`)
      .join(", ");
    lines.push(
      `adapter ${a.index}: ${a.name} (${a.backend})`,
      `  description                  ${a.description || "—"}`,
      `  vendor / architecture        ${a.vendor || "—"} / ${a.architecture || "—"}${a.isFallbackAdapter ? " (software fallback)" : ""}`,
      `  maxStorageBufferBindingSize  ${mib(a.maxStorageBufferBindingSize)}`,
      `  maxBufferSize                ${mib(a.maxBufferSize)}`,
      `  features                     ${features}`,
    );
    if (a.sameNameAs !== undefined)
      lines.push(
        `  note: same name as adapter ${a.sameNameAs}; Dawn selects adapters by name, so this one cannot be opened`,
      );
    lines.push("");
  }
  if (!listing.enumerated)
    lines.push("note: this Dawn does not list its adapters; only the default adapter is reachable");
  const usable = listing.adapters.filter((a) => a.sameNameAs === undefined).length;
  lines.push(
    usable === 1
      ? "one adapter: alexc opens two devices from it for two towers (each a separate GPUDevice on the same hardware)"
      : `${usable} adapters: alexc opens its devices on the default (high-performance) adapter unless ` +
          "openDevices({ select }) names others by index or name",
  );
  return lines.join("\n");
}

export async function devicesCommand(
  format: "text" | "json",
  out: (text: string) => void,
  err: (text: string) => void,
  create?: GpuFactory,
): Promise<number> {
  // Loaded only here, so that commands without a GPU never start Dawn.
  const { listAdapters, noAdapterError } = await import("../runtime/devices.ts");
  const listing = await listAdapters(create);
  if (listing.adapters.length === 0) {
    const d = noAdapterError(listing.detail).diagnostics[0];
    if (format === "json") out(JSON.stringify({ ...listing, error: d }, null, 2));
    else
      err([`alexc: error ${d.code}: ${d.message}`, ...d.notes, d.help ? `help: ${d.help}` : ""].join("\n"));
    return 1;
  }
  out(format === "json" ? JSON.stringify(listing, null, 2) : formatAdapters(listing));
  return 0;
}
