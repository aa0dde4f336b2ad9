// f16 storage for forward kernels: tensors are stored as f16 (half the bytes and memory traffic),
// arithmetic stays f32. Every generator writes f32 kernels; this pass rewrites one into its f16-storage
// form, so the dozen generators need no second code path and cannot drift apart:
//   - `enable f16;` first (WGSL wants enable directives before any declaration);
//   - each `var<storage, …> NAME: array<f32>` becomes `array<f16>`;
//   - each read `NAME[i]` becomes `f32(NAME[i])`; each store `NAME[i] = v;` becomes `NAME[i] = f16(v);`.
// Accumulators, weights read into registers and epilogues are f32, so a kernel sums exactly as its f32
// twin does; only each stored value (and each parameter) is rounded to f16 once.
// A compound assignment to a storage array (`NAME[i] += v`) cannot be rewritten this way and is
// refused: forward kernels never read-modify-write their outputs, and training keeps f32.

const STORAGE_DECL = /var<storage,\s*(?:read|read_write)>\s+([A-Za-z_]\w*)\s*:\s*array<f32>/g;

/** The f16-storage form of an f32 forward kernel's WGSL. */
export function withF16Storage(wgsl: string): string {
  const names = [...wgsl.matchAll(STORAGE_DECL)].map((m) => m[1]);
  if (names.length === 0) return wgsl;
  const declared = wgsl.replace(STORAGE_DECL, (decl) => decl.replace("array<f32>", "array<f16>"));
  // Declarations are rewritten above; accesses are everything after the last declaration.
  const bodyStart = lastDeclarationEnd(declared);
  const body = rewriteAccesses(declared.slice(bodyStart), new Set(names));
  return `enable f16;\n\n${declared.slice(0, bodyStart)}${body}`;
}

function lastDeclarationEnd(wgsl: string): number {
  let end = 0;
  for (const m of wgsl.matchAll(/var<storage[^;]*;/g)) end = m.index + m[0].length;
  return end;
}

/** Rewrites reads and stores of the storage arrays in `code` (recursively inside index expressions). */
function rewriteAccesses(code: string, names: ReadonlySet<string>): string {
  let out = "";
  let i = 0;
  const ident = /[A-Za-z_]\w*/g;
  while (i < code.length) {
    ident.lastIndex = i;
    const m = ident.exec(code);
    const comment = code.indexOf("//", i);
    if (comment !== -1 && (!m || comment < m.index)) {
      // comments are copied as written: they may quote accesses (`x[i]`) that are not code
      const eol = code.indexOf("\n", comment);
      const end = eol === -1 ? code.length : eol;
      out += code.slice(i, end);
      i = end;
      continue;
    }
    if (!m) {
      out += code.slice(i);
      break;
    }
    out += code.slice(i, m.index);
    i = m.index + m[0].length;
    const isMember = m.index > 0 && code[m.index - 1] === ".";
    if (!names.has(m[0]) || isMember || code[i] !== "[") {
      out += m[0];
      continue;
    }
    const close = matchingBracket(code, i);
    const access = `${m[0]}[${rewriteAccesses(code.slice(i + 1, close), names)}]`;
    i = close + 1;
    const rest = code.slice(i);
    const assign = /^\s*(=(?!=)|[+\-*/%&|^]=)/.exec(rest);
    if (!assign) {
      out += `f32(${access})`;
      continue;
    }
    if (assign[1] !== "=")
      throw new Error(`f16 storage: \`${access} ${assign[1]} …\` reads and writes storage in one statement`);
    const semicolon = statementEnd(code, i + assign[0].length);
    const value = rewriteAccesses(code.slice(i + assign[0].length, semicolon), names).trim();
    out += `${access} = f16(${value})`;
    i = semicolon;
  }
  return out;
}

function matchingBracket(code: string, open: number): number {
  let depth = 0;
  for (let j = open; j < code.length; j++) {
    if (code[j] === "[") depth++;
    else if (code[j] === "]" && --depth === 0) return j;
  }
  throw new Error("f16 storage: unbalanced `[` in generated WGSL");
}

/** The `;` ending the statement that starts at `from` (outside any parentheses or brackets). */
function statementEnd(code: string, from: number): number {
  let depth = 0;
  for (let j = from; j < code.length; j++) {
    const c = code[j];
    if (c === "(" || c === "[") depth++;
    else if (c === ")" || c === "]") depth--;
    else if (c === ";" && depth === 0) return j;
  }
  throw new Error("f16 storage: a store without `;` in generated WGSL");
}
