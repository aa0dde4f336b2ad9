// Opening WebGPU devices through Dawn's Node binding (`webgpu`). Each requestAdapter() call yields an
// independent adapter, so N towers get N devices even on one physical GPU (or lavapipe on the CPU).
//
// Choosing adapters: WebGPU has no enumeration API, and Dawn's requestAdapter() takes only a power
// preference. Dawn's Node binding does take flags at create(): `backend=…` and `adapter=NAME` (the
// first adapter whose name contains NAME, case-sensitive), and when no adapter matches it rejects with
// the list of available adapters. listAdapters() reads that list; `select` opens devices by index or
// name through it. Two adapters with the same name (two identical GPUs) cannot be told apart this way:
// both resolve to the first. When the list cannot be read, only the default adapter is reachable.
//
// Every device asks for the adapter's own limits (the defaults cap bindings at 128 MiB and storage
// buffers at 8, below what AlexNet wants), and turns the asynchronous failures WebGPU reports —
// device loss and uncaptured errors — into alexc diagnostics rather than console noise.
import { type Diagnostic, DiagnosticError, diag } from "../compiler/diagnostics.ts";

/** The limits alexc sizes its plans by; requested at the adapter's maximum. */
const REQUESTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
] as const;

export interface OpenDevice {
  index: number;
  /** e.g. `device 0 (llvmpipe (LLVM 19.1.7, 256 bits))`. */
  label: string;
  adapter: GPUAdapter;
  device: GPUDevice;
  /** maxStorageBufferBindingSize: pass it to lower() as maxBindingBytes. */
  maxBindingBytes: number;
  /** maxBufferSize: the largest buffer (a memory plan's arena) the device creates. */
  maxBufferBytes: number;
  /** The device was created with `timestamp-query`, so per-kernel timing is available. */
  timestamps: boolean;
  /** Resolves with AX4003 when the device is lost for any reason other than closeDevices(). */
  lost: Promise<DiagnosticError>;
  /** Uncaptured errors reported so far, oldest first (the executor checks it after each run). */
  errors: Diagnostic[];
  /** The kernel in flight, so that errors arriving asynchronously can name it. */
  activity: { kernel: string; layer: string };
  /** The adapter's index in listAdapters() when chosen by `select`; undefined for the default adapter. */
  adapterIndex?: number;
}

export interface OpenOptions {
  /** How many devices (towers); default 1. */
  count?: number;
  /** Request `timestamp-query` when the adapter has it (default true). */
  timestamps?: boolean;
  /** Called for each device loss or uncaptured error as it happens. */
  onDiagnostic?: (d: Diagnostic) => void;
  /** The WebGPU entry point; default Dawn's. Tests inject one without adapters. */
  gpu?: Pick<GPU, "requestAdapter">;
  /**
   * Adapters for devices 0, 1, …: an index into listAdapters() or a case-insensitive substring of the
   * adapter's name. Devices beyond the list reuse the last adapter (two devices on one adapter).
   */
  select?: (number | string)[];
  /** Dawn's create(flags), used by `select`; tests inject a fake. */
  create?: GpuFactory;
  /**
   * When a device after the first cannot be opened, return the ones that opened (at least one) and
   * warn (AX3005), rather than fail. Default true; callers must then read `devices.length`.
   */
  allowFewer?: boolean;
  /** Where the fallback warning goes; default stderr, so that it is always visible. */
  onWarning?: (d: Diagnostic) => void;
}

let dawn: GPU | undefined;

/** Dawn's GPU object, created once per process; also installs GPUBufferUsage & co. as globals. */
export async function defaultGpu(): Promise<GPU> {
  if (!dawn) {
    const { create, globals } = await import("webgpu");
    Object.assign(globalThis, globals);
    dawn = create([]);
  }
  return dawn;
}

const noAdapterHelp =
  "alexc runs its kernels on WebGPU through Dawn's Vulkan backend. On a machine without a GPU driver, " +
  "run `npm run setup`: it installs Mesa's lavapipe, a Vulkan driver that runs on the CPU.";

/** The AX4004 error, with the install hint; `detail` is what requestAdapter said, if anything. */
export function noAdapterError(detail?: string): DiagnosticError {
  return new DiagnosticError(
    diag("AX4004", {}, undefined, {
      help: noAdapterHelp,
      notes: detail ? [`requestAdapter: ${detail}`] : [],
    }),
  );
}

/** One adapter or null, never a throw: a missing driver is an expected situation. */
export async function findAdapter(
  gpu?: Pick<GPU, "requestAdapter">,
): Promise<{ adapter: GPUAdapter | null; detail?: string }> {
  try {
    const g = gpu ?? (await defaultGpu());
    return { adapter: await g.requestAdapter({ powerPreference: "high-performance" }) };
  } catch (e) {
    return { adapter: null, detail: e instanceof Error ? e.message : String(e) };
  }
}

function adapterName(adapter: GPUAdapter): string {
  const info = adapter.info;
  const name = [info?.description, info?.device, info?.vendor].find(
    (s) => typeof s === "string" && s.length > 0,
  );
  return name ?? "WebGPU adapter";
}

/**
 * Opens `count` devices, each from a fresh adapter object (a Dawn adapter yields one device), chosen
 * by `select` or the default adapter; throws AX4004 when there is no adapter and AX3004 when a selector
 * matches none. If a later device fails to open, falls back to fewer devices with AX3005 (see allowFewer).
 */
export async function openDevices(opts: OpenOptions = {}): Promise<OpenDevice[]> {
  const count = opts.count ?? 1;
  const factory = opts.select?.length ? await factoryOf(opts.create) : undefined;
  const chosen = factory ? await resolveSelection(opts.select!, factory) : undefined;
  const devices: OpenDevice[] = [];
  try {
    for (let index = 0; index < count; index++) {
      const entry = chosen?.[Math.min(index, chosen.length - 1)];
      try {
        const found = await findAdapter(entry ? factory!(flagsFor(entry)) : opts.gpu);
        devices.push(await openOne(index, opts, found, entry?.index));
      } catch (e) {
        if (index === 0 || opts.allowFewer === false) throw e;
        const reason =
          e instanceof DiagnosticError
            ? e.diagnostics.map((d) => d.notes.join("; ") || d.message).join("; ")
            : String(e);
        const warning = diag("AX3005", { count, opened: index, reason }, undefined, {
          help: "pass `allowFewer: false` to fail instead",
        });
        (opts.onWarning ?? ((d) => void process.stderr.write(`alexc: warning ${d.code}: ${d.message}\n`)))(
          warning,
        );
        break;
      }
    }
  } catch (e) {
    closeDevices(devices);
    throw e;
  }
  return devices;
}

async function openOne(
  index: number,
  opts: OpenOptions,
  found: { adapter: GPUAdapter | null; detail?: string },
  adapterIndex?: number,
): Promise<OpenDevice> {
  const { adapter, detail } = found;
  if (!adapter) throw noAdapterError(detail);
  const requiredLimits: Record<string, number> = {};
  for (const key of REQUESTED_LIMITS) requiredLimits[key] = adapter.limits[key];
  const timestamps = (opts.timestamps ?? true) && adapter.features.has("timestamp-query");
  const label = `device ${index} (${adapterName(adapter)})`;
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      label,
      requiredLimits,
      // shader-f16 costs nothing to enable and lets f16-storage plans run (compiler/wgsl/f16-storage.ts)
      requiredFeatures: [
        ...(timestamps ? (["timestamp-query"] as const) : []),
        ...(adapter.features.has("shader-f16") ? (["shader-f16"] as const) : []),
      ],
    });
  } catch (e) {
    throw noAdapterError(`requestDevice failed: ${e instanceof Error ? e.message : String(e)}`);
  }

  const open: OpenDevice = {
    index,
    label,
    adapter,
    device,
    maxBindingBytes: device.limits.maxStorageBufferBindingSize,
    maxBufferBytes: device.limits.maxBufferSize,
    timestamps,
    lost: new Promise<DiagnosticError>(() => {}),
    errors: [],
    activity: { kernel: "(none)", layer: "(none)" },
    adapterIndex,
  };
  const report = (d: Diagnostic) => {
    open.errors.push(d);
    opts.onDiagnostic?.(d);
  };
  // `destroyed` is our own closeDevices(): not an error. Anything else becomes AX4003.
  open.lost = device.lost.then((info) => {
    const error = new DiagnosticError(
      diag(
        "AX4003",
        { device: label, reason: info.message || info.reason || "unknown", kernel: open.activity.kernel },
        undefined,
      ),
    );
    if (info.reason !== "destroyed") report(error.diagnostics[0]);
    return error;
  });
  device.addEventListener("uncapturederror", (event) => {
    const error = (event as GPUUncapturedErrorEvent).error;
    const { kernel, layer } = open.activity;
    report(
      error instanceof GPUOutOfMemoryError
        ? diag("AX4002", { device: label, kernel, layer }, undefined)
        : diag("AX4001", { kernel, layer, message: error.message }, undefined),
    );
  });
  return open;
}

/** Destroys the devices; their `lost` promises resolve with reason `destroyed`, which is not reported. */
export function closeDevices(devices: readonly OpenDevice[]): void {
  for (const d of devices) d.device.destroy();
}

// ---- Adapter enumeration and selection (Dawn-specific; see the header) ----

/** Dawn's `create(flags)`. */
export type GpuFactory = (flags: string[]) => Pick<GPU, "requestAdapter">;

/** One line of Dawn's adapter list. */
export interface AdapterEntry {
  index: number;
  backend: string;
  name: string;
}

/** What `alexc devices` shows for one adapter. */
export interface AdapterReport extends AdapterEntry {
  vendor: string;
  architecture: string;
  description: string;
  isFallbackAdapter: boolean;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  features: { "shader-f16": boolean; "timestamp-query": boolean; subgroups: boolean };
  /** Set when an earlier adapter has the same name: Dawn opens that one instead. */
  sameNameAs?: number;
}

export interface AdapterListing {
  adapters: AdapterReport[];
  /** False when Dawn's list could not be read and only the default adapter was asked. */
  enumerated: boolean;
  detail?: string;
}

/** A name no adapter has, so that Dawn answers with its list. */
const NO_SUCH_ADAPTER = "alexc: list the adapters";

let dawnFactory: GpuFactory | undefined;

/** Dawn's create(), caching one GPU object per flag set for the life of the process (as defaultGpu()). */
async function factoryOf(create?: GpuFactory): Promise<GpuFactory> {
  if (create) return create;
  if (!dawnFactory) {
    const { create: dawnCreate, globals } = await import("webgpu");
    Object.assign(globalThis, globals);
    // The default flag set shares defaultGpu()'s object: one Dawn instance per configuration.
    const gpus = new Map<string, GPU>([["", await defaultGpu()]]);
    dawnFactory = (flags) => {
      const key = flags.join("\n");
      let gpu = gpus.get(key);
      if (!gpu) gpus.set(key, (gpu = dawnCreate(flags)));
      return gpu;
    };
  }
  return dawnFactory;
}

/** The flags that make Dawn return this adapter (none for the default adapter). */
const flagsFor = (entry: AdapterEntry) =>
  entry.backend ? [`backend=${entry.backend}`, `adapter=${entry.name}`] : [];

/** Parses ` * backend: 'vulkan', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'` lines. */
export function parseAdapterList(message: string): AdapterEntry[] {
  const entries: AdapterEntry[] = [];
  for (const line of message.split("\n")) {
    const m = /^\s*\*\s*backend:\s*'([^']*)',\s*name:\s*'(.*)'\s*$/.exec(line);
    if (m) entries.push({ index: entries.length, backend: m[1], name: m[2] });
  }
  return entries;
}

/** Dawn's adapter list, or undefined when this Dawn does not answer with one. */
export async function enumerateAdapters(create?: GpuFactory): Promise<AdapterEntry[] | undefined> {
  try {
    const adapter = await (await factoryOf(create))([`adapter=${NO_SUCH_ADAPTER}`]).requestAdapter();
    if (adapter) return undefined; // a Dawn that ignores the flag: no list to read
  } catch (e) {
    const entries = parseAdapterList(e instanceof Error ? e.message : String(e));
    return entries.length ? entries : undefined;
  }
  return undefined;
}

/** Every adapter with the figures alexc cares about; the default adapter alone when no list is readable. */
export async function listAdapters(create?: GpuFactory): Promise<AdapterListing> {
  const factory = await factoryOf(create);
  const entries = await enumerateAdapters(factory);
  const targets: AdapterEntry[] = entries ?? [{ index: 0, backend: "", name: "" }];
  const adapters: AdapterReport[] = [];
  let detail: string | undefined;
  for (const entry of targets) {
    const found = await findAdapter(factory(flagsFor(entry)));
    if (!found.adapter) {
      detail = found.detail;
      continue;
    }
    const { info, limits, features } = found.adapter;
    const first = targets.find((t) => t.name === entry.name);
    adapters.push({
      index: entry.index,
      backend: entry.backend || "default",
      name: entry.name || adapterName(found.adapter),
      vendor: info?.vendor ?? "",
      architecture: info?.architecture ?? "",
      description: info?.description ?? "",
      isFallbackAdapter: Boolean((info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter),
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      features: {
        "shader-f16": features.has("shader-f16"),
        "timestamp-query": features.has("timestamp-query"),
        subgroups: features.has("subgroups"),
      },
      ...(first && first.index !== entry.index ? { sameNameAs: first.index } : {}),
    });
  }
  return { adapters, enumerated: entries !== undefined, ...(detail ? { detail } : {}) };
}

/** Resolves selectors to list entries; AX3004 names the selector and the adapters there are. */
async function resolveSelection(select: (number | string)[], factory: GpuFactory): Promise<AdapterEntry[]> {
  const entries = await enumerateAdapters(factory);
  // Without a list only the default adapter is reachable: index 0, or a substring of its name.
  const known: AdapterEntry[] = entries ?? [{ index: 0, backend: "", name: "" }];
  let defaultName: string | undefined;
  const resolved: AdapterEntry[] = [];
  for (const selector of select) {
    let entry: AdapterEntry | undefined;
    if (typeof selector === "number") entry = known.find((e) => e.index === selector);
    else {
      const needle = selector.toLowerCase();
      if (!entries && defaultName === undefined) {
        const { adapter } = await findAdapter(factory([]));
        defaultName = adapter ? `${adapterName(adapter)} ${adapter.info?.vendor ?? ""}` : "";
      }
      entry = entries
        ? entries.find((e) => e.name.toLowerCase().includes(needle))
        : defaultName!.toLowerCase().includes(needle)
          ? known[0]
          : undefined;
    }
    if (!entry) {
      const available = entries
        ? entries.map((e) => `${e.index}: ${e.name} (${e.backend})`).join(", ")
        : "only the default adapter (index 0) is reachable";
      throw new DiagnosticError(
        diag("AX3004", { selector: String(selector), available }, undefined, {
          help: "run `alexc devices` to list the adapters",
        }),
      );
    }
    resolved.push(entry);
  }
  return resolved;
}
