// The Prettier plugin: Prettier itself formats .net files to the same bytes as `alexc fmt`, whatever
// its width options, reports syntax errors with their location, and this repository's Prettier
// config loads the plugin (a .ts file, through Node's type stripping) for models/*.net.
import { readFileSync } from "node:fs";
import * as prettier from "prettier";
import { describe, expect, it } from "vitest";
import { formatSource } from "../../grammar/format.ts";
import plugin from "../../grammar/prettier-plugin.ts";

const alexnetPath = new URL("../../models/alexnet.net", import.meta.url).pathname;
const alexnet = readFileSync(alexnetPath, "utf8");

function canonical(text: string): string {
  const result = formatSource(text);
  if (!result.ok) throw new Error("does not parse");
  return result.text;
}

describe("Prettier plugin", () => {
  it("formats models/alexnet.net to the bytes alexc fmt gives", async () => {
    // Code lines re-indented and re-spaced; comment lines and blank lines kept.
    const messy = alexnet.replace(/^ +([^#\n]*)/gm, (_, code: string) => `\t${code.replace(/, /g, " ,\t")}`);
    expect(messy).not.toBe(alexnet);
    const formatted = await prettier.format(messy, { parser: "alexc", plugins: [plugin] });
    expect(formatted).toBe(canonical(alexnet));
    expect(await prettier.format(formatted, { parser: "alexc", plugins: [plugin] })).toBe(formatted);
  });

  it("is chosen by the .net extension, and Prettier's width options do not change the canonical form", async () => {
    for (const options of [{}, { printWidth: 40 }, { printWidth: 200, tabWidth: 8, useTabs: true }]) {
      const formatted = await prettier.format(alexnet, {
        filepath: "x/alexnet.net",
        plugins: [plugin],
        ...options,
      });
      expect(formatted).toBe(canonical(alexnet));
    }
    expect(await prettier.format("", { filepath: "empty.net", plugins: [plugin] })).toBe("");
    expect(await prettier.format("network n {}\r\n", { filepath: "n.net", plugins: [plugin] })).toBe(
      "network n {}\n",
    );
  });

  it("reports a syntax error with its location", async () => {
    const broken = "network n {\n  x = \n}\n";
    await expect(prettier.format(broken, { parser: "alexc", plugins: [plugin] })).rejects.toMatchObject({
      name: "SyntaxError",
      message: expect.stringContaining("AX1001: expected a name, found `}` (3:1)"),
      loc: { start: { line: 3, column: 1 } },
    });
  });

  it("is loaded by this repository's .prettierrc.json for models/*.net", async () => {
    const config = await prettier.resolveConfig(alexnetPath, { editorconfig: false });
    expect(config).toMatchObject({
      parser: "alexc",
      plugins: [expect.stringMatching(/prettier-plugin\.ts$/)],
    });
    // Prettier imports the plugin itself here, by path.
    expect(await prettier.format(alexnet, { ...config, filepath: alexnetPath })).toBe(canonical(alexnet));
  });
});
