// Opening WebGPU devices through Dawn's Node binding (`webgpu`). Each requestAdapter() call yields an
// independent adapter, so N towers get N devices even on one physical GPU (or lavapipe on the CPU).
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
  /** The device was created with `timestamp-query`, so per-kernel timing is available. */
  timestamps: boolean;
  /** Resolves with AX4003 when the device is lost for any reason other than closeDevices(). */
  lost: Promise<DiagnosticError>;
  /** Uncaptured errors reported so far, oldest first (the executor checks it after each run). */
  errors: Diagnostic[];
  /** The kernel in flight, so that errors arriving asynchronously can name it. */
  activity: { kernel: string; layer: string };
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

/** Opens `count` devices, one adapter each; throws AX4004 when there is no adapter. */
export async function openDevices(opts: OpenOptions = {}): Promise<OpenDevice[]> {
  const count = opts.count ?? 1;
  const devices: OpenDevice[] = [];
  try {
    for (let index = 0; index < count; index++) devices.push(await openOne(index, opts));
  } catch (e) {
    closeDevices(devices);
    throw e;
  }
  return devices;
}

async function openOne(index: number, opts: OpenOptions): Promise<OpenDevice> {
  const { adapter, detail } = await findAdapter(opts.gpu);
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
      requiredFeatures: timestamps ? ["timestamp-query"] : [],
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
    timestamps,
    lost: new Promise<DiagnosticError>(() => {}),
    errors: [],
    activity: { kernel: "(none)", layer: "(none)" },
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
