// What every CLI command receives, and the CLI's own error for bad usage (exit status 2).
import { readFileSync } from "node:fs";
import type { FrontendResult } from "./frontend.ts";

export const VERSION = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"))
  .version as string;

export class UsageError extends Error {}

export interface CommandContext {
  file: string;
  source: string;
  front: FrontendResult;
  values: Record<string, string | boolean | undefined>;
  format: "text" | "json";
  out: (text: string) => void;
  err: (text: string) => void;
}

/** `--storage f32|f16`: how a forward plan stores activations and weights (compiler/wgsl/f16-storage.ts). */
export function storageOption(value: string | boolean | undefined): "f32" | "f16" {
  if (value === undefined || value === "f32") return "f32";
  if (value === "f16") return "f16";
  throw new UsageError(`--storage must be f32 or f16, got \`${value}\``);
}
