// Layer kinds and their attributes as the editor shows them, read from the checker's own table
// (compiler/check/attributes.ts `opSpecs`), so hover and completion never disagree with the checker.
import { z } from "zod";
import { isLayerKind, opSpecs, type AttrSpec } from "../check/attributes.ts";
import type { OpKind } from "../graph.ts";

export function attributesOf(op: string): Record<string, AttrSpec> | undefined {
  return isLayerKind(op) ? opSpecs[op].attrs : undefined;
}

function inputCount(op: OpKind): string {
  const { min, max } = opSpecs[op].inputs;
  return min === max ? String(min) : `${min} to ${max}`;
}

/** A default as it would be written in a `.net` file: `(1, 1)`, `cross`, `normal(0, 0.01)`. */
export function showDefault(value: unknown): string {
  if (Array.isArray(value))
    return value.every((v) => v === value[0]) ? String(value[0]) : `(${value.join(", ")})`;
  if (typeof value === "object" && value !== null && "kind" in value) {
    const v = value as { kind: string; mean?: number; std?: number; value?: number; tower?: number };
    if (v.kind === "normal") return `normal(${v.mean}, ${v.std})`;
    if (v.kind === "constant") return `constant(${v.value})`;
    if (v.kind === "on") return `on(${v.tower})`;
    return v.kind;
  }
  return String(value);
}

export function describeAttribute(spec: AttrSpec): string {
  const when =
    spec.default !== undefined
      ? `default \`${showDefault(spec.default)}\``
      : spec.optional
        ? "optional"
        : "required";
  return `${spec.expects} (${when})`;
}

export function kindMarkdown(op: OpKind): string {
  const attrs = Object.entries(opSpecs[op].attrs as Record<string, AttrSpec>);
  const lines = [`\`${op}\` — layer kind, ${inputCount(op)} input(s)`];
  if (attrs.length === 0) lines.push("", "no attributes");
  else lines.push("", ...attrs.map(([name, spec]) => `- \`${name}\`: ${describeAttribute(spec)}`));
  return lines.join("\n");
}

/**
 * The bare words and calls an attribute accepts (`local`, `cross`, `on(…)`), read from its zod
 * schema: enumerations, literals, and `{ call: literal }` objects, through unions and transforms.
 */
export function valueWords(schema: z.ZodType): string[] {
  if (schema instanceof z.ZodPipe) return valueWords(schema.in as z.ZodType);
  if (schema instanceof z.ZodUnion)
    return [...new Set(schema.options.flatMap((o) => valueWords(o as z.ZodType)))];
  if (schema instanceof z.ZodEnum) return schema.options.map(String);
  if (schema instanceof z.ZodLiteral) return [...schema.values].filter((v) => typeof v === "string");
  if (schema instanceof z.ZodObject) {
    const call = (schema.shape as Record<string, z.ZodType>).call;
    return call instanceof z.ZodLiteral ? [...call.values].map((c) => `${String(c)}(…)`) : [];
  }
  return [];
}
