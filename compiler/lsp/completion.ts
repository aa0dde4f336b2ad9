// Completion of layer kinds (after `name =`), attribute names and input tensors inside a layer's
// argument list, and attribute values (the words an attribute's schema accepts, constants).
// The context is read from the raw text before the cursor, not from the AST: while typing, the
// statement under the cursor rarely parses.
import { CompletionItemKind, type CompletionItem } from "vscode-languageserver";
import type { BlockDecl } from "../../grammar/ast.ts";
import { layerKinds } from "../check/attributes.ts";
import type { Analysis } from "./documents.ts";
import { attributesOf, describeAttribute, kindMarkdown, valueWords } from "./kinds.ts";
import { scopeAt, visibleSymbols } from "./symbols.ts";

export type CompletionContext =
  | { kind: "op" }
  /** In a layer's argument list: `attribute` is set when the cursor is in that attribute's value. */
  | { kind: "argument"; op: string; given: string[]; attribute?: string; statement: number }
  /** In some other value: a constant's, a call's argument. */
  | { kind: "value" }
  | { kind: "none" };

const isNameChar = (c: string | undefined) => c !== undefined && /[A-Za-z0-9_]/.test(c);

/** The text up to `offset` with comments and strings blanked out, so brackets in them do not count. */
function codeBefore(text: string, offset: number): string {
  return text
    .slice(0, offset)
    .replace(/"(?:[^"\\\r\n]|\\.)*"?|#[^\r\n]*|\/\/[^\r\n]*/g, (m) => " ".repeat(m.length));
}

/** The name that ends just before `end` (whitespace skipped) and where it starts. */
function nameBefore(code: string, end: number): { name: string; start: number } {
  let i = end;
  while (i > 0 && /\s/.test(code[i - 1])) i--;
  const stop = i;
  while (i > 0 && isNameChar(code[i - 1])) i--;
  return { name: code.slice(i, stop), start: i };
}

function charBefore(code: string, end: number): { char: string; at: number } {
  let i = end;
  while (i > 0 && /\s/.test(code[i - 1])) i--;
  return { char: code[i - 1] ?? "", at: i - 1 };
}

/**
 * Where the layer statement whose `name =` ends just before `at` starts; -1 when there is none
 * (`const name =` and a parameter's `name =` are not layer heads).
 */
function layerHead(code: string, at: number): number {
  const equals = charBefore(code, at);
  if (equals.char !== "=") return -1;
  const name = nameBefore(code, equals.at);
  if (!name.name || /^\d/.test(name.name)) return -1;
  return nameBefore(code, name.start).name === "const" ? -1 : name.start;
}

export function completionContext(text: string, offset: number): CompletionContext {
  const code = codeBefore(text, offset);
  let start = code.length;
  while (start > 0 && isNameChar(code[start - 1])) start--;
  // The innermost unclosed bracket before the word being typed, unless a `{` or `}` comes first.
  let depth = 0;
  let open = -1;
  for (let i = start - 1; i >= 0 && open < 0; i--) {
    const c = code[i];
    if (c === "{" || c === "}") break;
    if (c === ")" || c === "]") depth++;
    else if (c === "(" || c === "[") {
      if (depth === 0) open = i;
      else depth--;
    }
  }
  if (open < 0) return layerHead(code, start) >= 0 ? { kind: "op" } : { kind: "none" };
  const callee = nameBefore(code, open);
  const statement = callee.name ? layerHead(code, callee.start) : -1;
  if (code[open] === "[" || statement < 0) return { kind: "value" };
  const args = splitTopLevel(code.slice(open + 1, start));
  const current = args.pop() ?? "";
  const colon = current.indexOf(":");
  const given = [...args, ...splitTopLevel(argumentsAfter(text, offset))]
    .map((a) => /^\s*([A-Za-z_]\w*)\s*:/.exec(a)?.[1])
    .filter((a): a is string => a !== undefined);
  if (colon < 0) return { kind: "argument", op: callee.name, given, statement };
  return { kind: "argument", op: callee.name, given, statement, attribute: current.slice(0, colon).trim() };
}

/** The rest of the argument list after the cursor, up to its closing `)`. */
function argumentsAfter(text: string, offset: number): string {
  let depth = 0;
  for (let i = offset; i < text.length; i++) {
    const c = text[i];
    if (c === "(" || c === "[") depth++;
    else if ((c === ")" || c === "]") && depth-- === 0) return text.slice(offset, i);
    else if (c === "{" || c === "}" || c === "=") return text.slice(offset, i);
  }
  return text.slice(offset);
}

/** Splits an argument list at its top-level commas. */
function splitTopLevel(list: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let from = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c === "(" || c === "[") depth++;
    else if (c === ")" || c === "]") depth--;
    else if (c === "," && depth === 0) {
      parts.push(list.slice(from, i));
      from = i + 1;
    }
  }
  parts.push(list.slice(from));
  return parts;
}

export function completions(analysis: Analysis, offset: number): CompletionItem[] {
  const context = completionContext(analysis.text, offset);
  const index = analysis.index;
  const visible = visibleSymbols(scopeAt(index, offset));
  const values = (): CompletionItem[] =>
    visible
      .filter((s) => s.kind === "const" || s.kind === "property" || s.kind === "param")
      .map((s) => ({
        label: s.name,
        kind: CompletionItemKind.Constant,
        detail: s.kind,
        sortText: `1${s.name}`,
      }));
  switch (context.kind) {
    case "none":
      return [];
    case "value":
      return values();
    case "op": {
      const kinds = layerKinds.map((op) => ({
        label: op,
        kind: CompletionItemKind.Function,
        detail: "layer kind",
        documentation: { kind: "markdown" as const, value: kindMarkdown(op) },
      }));
      const blocks = [...index.blocks.values()].map((b) => ({
        label: b.name,
        kind: CompletionItemKind.Module,
        detail: `block (${(b.decl as BlockDecl).params.map((p) => p.name.name).join(", ")})`,
      }));
      return [...kinds, ...blocks];
    }
    case "argument": {
      const attrs = attributesOf(context.op);
      if (context.attribute !== undefined) {
        const spec = attrs && Object.hasOwn(attrs, context.attribute) ? attrs[context.attribute] : undefined;
        const words = spec
          ? valueWords(spec.schema).map((w) => ({
              label: w,
              kind: CompletionItemKind.EnumMember,
              insertText: w.replace("(…)", "("),
              sortText: `0${w}`,
            }))
          : [];
        return [...words, ...values()];
      }
      const block = index.blocks.get(context.op)?.decl as BlockDecl | undefined;
      const named: CompletionItem[] = attrs
        ? Object.entries(attrs).map(([name, spec]) => ({
            label: name,
            kind: CompletionItemKind.Property,
            detail: describeAttribute(spec),
            insertText: `${name}: `,
            sortText: `0${name}`,
          }))
        : (block?.params ?? []).map((p) => ({
            label: p.name.name,
            kind: CompletionItemKind.Property,
            detail: `parameter of block \`${context.op}\``,
            insertText: `${p.name.name}: `,
            sortText: `0${p.name.name}`,
          }));
      // A layer reads only layers defined before its own statement.
      const tensors = visible
        .filter(
          (s) =>
            s.kind === "input" ||
            s.kind === "param" ||
            (s.kind === "layer" && s.span.start.offset < context.statement),
        )
        .map((s) => ({
          label: s.name,
          kind: CompletionItemKind.Variable,
          detail: s.kind,
          sortText: `1${s.name}`,
        }));
      return [...named.filter((item) => !context.given.includes(item.label)), ...tensors];
    }
  }
}
