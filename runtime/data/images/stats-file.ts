// The statistics' file: the hash that names the training files they were computed from, where the
// file lives (next to the data, or the user's cache), and its safetensors form (tensors for the
// numbers, metadata for the hash, size, count and the files that did not decode).
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DiagnosticError, diag } from "../../../compiler/diagnostics.ts";
import { encodeSafetensors, readSafetensorsFile, type TensorF32 } from "../../safetensors.ts";
import type { Conversion, FolderIndex, ImageStats, SkippedFile } from "./types.ts";

type Vec3 = [number, number, number];

const CACHE_FORMAT = "alexc-image-stats-1";

/**
 * sha256 over the sorted train and val paths with each file's byte size and mtime, and `size`:
 * adding, removing or rewriting any file gives another hash. A file that cannot be stat'ed hashes
 * as missing (its decode will fail and list it as unreadable).
 */
export function fileListHash(index: FolderIndex, size: number): string {
  const hash = createHash("sha256").update(`${CACHE_FORMAT}\nsize ${size}\n`);
  const paths = [...index.train, ...index.val].map((e) => e.path).sort();
  for (const p of paths) {
    let stamp = "missing";
    try {
      const s = fs.statSync(path.join(index.root, p), { bigint: true });
      stamp = `${s.size} ${s.mtimeNs}`;
    } catch {
      // stays "missing"
    }
    hash.update(`${p}\0${stamp}\n`);
  }
  return hash.digest("hex");
}

/** Where the statistics are cached by default: next to the data. */
export function defaultStatsCachePath(root: string, size: number): string {
  return path.join(root, `.alexc-stats-${size}.safetensors`);
}

/** Where they go when the data's folder cannot be written: the user's cache, keyed by the hash. */
export function fallbackStatsCachePath(hash: string): string {
  const xdg = process.env.XDG_CACHE_HOME;
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), ".cache");
  return path.join(base, "alexc", "datasets", `${hash}.safetensors`);
}

/**
 * Reads statistics that loadOrComputeStats wrote (or a copy of them, such as the one a training run
 * keeps beside its checkpoints), whatever data they came from; they must be for `size`. Throws AX4006
 * naming the file when it is not such a file.
 */
export function readStatsFile(file: string, size: number): ImageStats {
  try {
    return parseStats(file, size);
  } catch (error) {
    if (error instanceof DiagnosticError) throw error;
    throw new DiagnosticError(
      diag("AX4006", { file: `\`${file}\``, problem: (error as Error).message }, undefined),
    );
  }
}

/** The cached statistics in `file` if it holds them for this hash and size; else "absent", "stale" or why not. */
export function readCache(file: string, hash: string, size: number): ImageStats | string {
  if (!fs.existsSync(file)) return "absent";
  try {
    const stats = parseStats(file, size);
    return stats.fileListHash === hash ? stats : "stale";
  } catch (error) {
    return error instanceof DiagnosticError ? error.diagnostics[0].message : (error as Error).message;
  }
}

function parseStats(file: string, size: number): ImageStats {
  const { tensors, metadata } = readSafetensorsFile(file, "input");
  if (metadata.format !== CACHE_FORMAT) {
    throw new Error(
      `is not alexc image statistics (format \`${metadata.format}\`, expected \`${CACHE_FORMAT}\`)`,
    );
  }
  if (metadata.size !== String(size)) {
    throw new Error(`holds statistics at size ${metadata.size}, not ${size}`);
  }
  const tensor = (name: string, shape: number[]): Float32Array => {
    const t = tensors.get(name);
    if (t === undefined || t.shape.join() !== shape.join()) {
      throw new Error(`tensor \`${name}\` is missing or not [${shape.join(", ")}]`);
    }
    if (!t.data.every(Number.isFinite)) throw new Error(`tensor \`${name}\` holds a non-finite value`);
    return t.data;
  };
  const count = Number(metadata.count);
  if (!Number.isInteger(count) || count < 1)
    throw new Error(`count \`${metadata.count}\` is not a positive integer`);
  if (typeof metadata.hash !== "string") throw new Error("has no file-list hash");
  const unreadable = JSON.parse(metadata.unreadable ?? "null") as SkippedFile[];
  const conversions = JSON.parse(metadata.conversions ?? "null") as Partial<Record<Conversion, number>>;
  if (!Array.isArray(unreadable) || typeof conversions !== "object" || conversions === null) {
    throw new Error("its `unreadable` or `conversions` metadata is not a list or a record");
  }
  const vectors = tensor("eigenvectors", [3, 3]);
  return {
    size,
    count,
    fileListHash: metadata.hash,
    meanImage: new Float32Array(tensor("mean_image", [3, size, size])),
    channelMean: [...tensor("channel_mean", [3])] as Vec3,
    covariance: [...tensor("covariance", [3, 3])],
    eigenvalues: [...tensor("eigenvalues", [3])] as Vec3,
    eigenvectors: [0, 1, 2].map((i) => [...vectors.subarray(3 * i, 3 * i + 3)] as Vec3),
    unreadable,
    conversions,
  };
}

export function encodeStats(stats: ImageStats): Uint8Array {
  const t = (shape: number[], data: ArrayLike<number>): TensorF32 => ({
    shape,
    data: Float32Array.from(data),
  });
  const tensors = new Map<string, TensorF32>([
    ["mean_image", { shape: [3, stats.size, stats.size], data: stats.meanImage }],
    ["channel_mean", t([3], stats.channelMean)],
    ["covariance", t([3, 3], stats.covariance)],
    ["eigenvalues", t([3], stats.eigenvalues)],
    ["eigenvectors", t([3, 3], stats.eigenvectors.flat())],
  ]);
  return encodeSafetensors(tensors, {
    format: CACHE_FORMAT,
    hash: stats.fileListHash,
    size: String(stats.size),
    count: String(stats.count),
    unreadable: JSON.stringify(stats.unreadable),
    conversions: JSON.stringify(stats.conversions),
  });
}
