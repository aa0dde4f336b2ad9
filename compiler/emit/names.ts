// Identifiers for generated code (TypeScript runners, WGSL kernels). User text reaches generated code
// only as an identifier from this namespace or as a JSON.stringify'd string literal, never pasted raw.

/** TypeScript/JavaScript reserved and strict-mode words, and WGSL keywords and reserved words we might hit. */
const reserved = new Set(
  (
    "break case catch class const continue debugger default delete do else enum export extends false finally for " +
    "function if import in instanceof new null return super switch this throw true try typeof var void while with " +
    "as implements interface let package private protected public static yield any boolean constructor declare get " +
    "module require number set string symbol type from of await async undefined NaN Infinity arguments eval " +
    "alias array atomic bitcast bool break continuing diagnostic discard f16 f32 fn i32 loop mat2x2 mat3x3 mat4x4 " +
    "override ptr requires sampler struct texture_2d u32 uniform vec2 vec3 vec4 workgroup storage read_write " +
    "main"
  ).split(" "),
);

/** A valid identifier from arbitrary text: non-identifier characters become `_`, never a reserved word. */
export function sanitize(text: string): string {
  let id = text.replace(/[^A-Za-z0-9_]/g, "_");
  if (id === "" || /^[0-9]/.test(id)) id = `_${id}`;
  if (reserved.has(id)) id = `${id}_`;
  return id;
}

/** Allocates distinct sanitised identifiers: the same text always gets the same name. */
export function createNamespace(): (text: string) => string {
  const byText = new Map<string, string>();
  const taken = new Set<string>();
  return (text) => {
    const known = byText.get(text);
    if (known) return known;
    const base = sanitize(text);
    let name = base;
    for (let i = 2; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    byText.set(text, name);
    return name;
  };
}

/** Text for inside a generated template literal: backslashes, backticks and `${` escaped. */
export function templateText(text: string): string {
  return text.replace(/[\\`]|\$\{/g, (m) => `\\${m}`);
}

/** Text for inside a generated double-quoted string literal (an import path): JSON's escapes. */
export function stringText(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

/** Text for one line of a generated `//` comment: line breaks become spaces. */
export function commentText(text: string): string {
  return text.replace(/[\r\n\u2028\u2029]+/g, " ");
}
