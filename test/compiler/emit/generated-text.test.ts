// User text that is not an identifier (the source path, the output folder, the checkout's path)
// reaches the generated programs escaped for where it lands: a template literal (--help), a string
// literal (imports) or a line comment. A folder and a source named with backticks, `${`, quotes, a
// backslash and a line break must still give programs that parse and print that folder verbatim.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { format } from "prettier";
import { describe, expect, it } from "vitest";
import { main } from "../../../compiler/cli.ts";
import { commentText, stringText, templateText } from "../../../compiler/emit/names.ts";

describe("text escaped for generated code", () => {
  it("escapes what would end or interpolate a template literal, and nothing else", () => {
    expect(templateText("a`b${c}\\d $e {f}")).toBe("a\\`b\\${c}\\\\d $e {f}");
    expect(eval(`\`${templateText("x`${1+1}\\n")}\``)).toBe("x`${1+1}\\n");
  });

  it("keeps a string literal closed and a comment on one line", () => {
    const odd = 'q"\\\n';
    expect(JSON.parse(`"${stringText(odd)}"`)).toBe(odd);
    expect(commentText("a\nb\r\nc\u2028d")).toBe("a b c d");
  });
});

describe("compiling into a folder with an awkward name", () => {
  const base = mkdtempSync(join(tmpdir(), "alexc-odd-"));
  // Node cannot load a module whose path has a backslash, so that one is in the source's name only.
  const odd = join(base, 'out `tick` ${HOME} "q"\nline');
  const fixture = new URL("../../fixtures/tiny-fmnist.net", import.meta.url).pathname;
  const source = join(base, "net `${x}` back\\slash.net");
  copyFileSync(fixture, source);

  it("writes train.ts and infer.ts that parse, and --help names the folder verbatim", async () => {
    mkdirSync(base, { recursive: true });
    const errors: string[] = [];
    const code = await main(["compile", source, "-o", odd], { out: () => {}, err: (t) => errors.push(t) });
    expect(code, errors.join("\n")).toBe(0);
    for (const file of ["train.ts", "infer.ts"]) {
      const text = readFileSync(join(odd, file), "utf8");
      await expect(format(text, { parser: "typescript" })).resolves.toBeTypeOf("string");
    }
    const help = spawnSync(process.execPath, [join(odd, "train.ts"), "--help"], { encoding: "utf8" });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout + help.stderr).toContain(
      `usage: node_modules/.bin/node ${join(odd, "train.ts")} [options]`,
    );
    expect(help.stdout + help.stderr).toContain(`with the recipe of ${source}.`);
    const inferHelp = spawnSync(process.execPath, [join(odd, "infer.ts"), "--help"], { encoding: "utf8" });
    expect(inferHelp.status, inferHelp.stderr).toBe(0);
    expect(inferHelp.stdout + inferHelp.stderr).toContain(`node_modules/.bin/node ${join(odd, "infer.ts")}`);
  });
});
