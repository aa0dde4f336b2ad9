// `alexc graph FILE [-o OUT.svg|OUT.dot] [--format svg|dot]`: the architecture drawn as the paper's
// Figure 2 draws it (compiler/diagram/). Its --format names the picture's format, not the
// diagnostics', so it parses its own arguments; errors in FILE are reported as `alexc check` does.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, extname } from "node:path";
import { parseArgs } from "node:util";
import type { CliIo } from "./cli.ts";
import { hasErrors } from "./diagnostics.ts";
import { dotDiagram } from "./diagram/dot.ts";
import { svgDiagram } from "./diagram/svg.ts";
import { compileSource } from "./frontend.ts";
import { renderDiagnostics, summary } from "./render.ts";
import { replaceFileAtomically } from "../runtime/durable.ts";

export const graphUsage = `usage: alexc graph FILE [-o OUT.svg|OUT.dot] [--format svg|dot]

Draws the network as the paper's Figure 2 does: the towers side by side, each layer's per-tower output
shape and parameters, cross-tower edges dashed red. The format follows -o's extension (.svg, or .dot
/ .gv for Graphviz) unless --format says otherwise; without -o the picture goes to standard output.`;

type Format = "svg" | "dot";
const extensions: Record<string, Format> = { ".svg": "svg", ".dot": "dot", ".gv": "dot" };

class Usage extends Error {}

function chooseFormat(format: string | undefined, output: string | undefined): Format {
  if (format !== undefined && format !== "svg" && format !== "dot")
    throw new Usage(`--format must be svg or dot, got \`${format}\``);
  const fromName = output === undefined ? undefined : extensions[extname(output).toLowerCase()];
  if (format && fromName && format !== fromName)
    throw new Usage(`--format ${format} does not match the output file ${output} (${fromName})`);
  const chosen = (format as Format | undefined) ?? fromName;
  if (chosen) return chosen;
  if (output === undefined) return "svg";
  throw new Usage(`cannot tell the format from ${output}: name it .svg or .dot, or give --format svg|dot`);
}

export async function graphCommand(args: string[], io: CliIo): Promise<number> {
  let file: string;
  let output: string | undefined;
  let format: Format;
  try {
    const { values, positionals } = parseArgs({
      args,
      options: {
        output: { type: "string", short: "o" },
        format: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      io.out(graphUsage);
      return 0;
    }
    if (positionals.length !== 1) throw new Usage("`graph` takes exactly one FILE");
    if (values.output === "") throw new Usage("-o needs a file name");
    [file] = positionals;
    output = values.output;
    format = chooseFormat(values.format, output);
  } catch (e) {
    io.err(`alexc: ${(e as Error).message}\n\n${graphUsage}`);
    return 2;
  }

  let source: string;
  try {
    source = readFileSync(file, "utf8");
  } catch (e) {
    io.err(`alexc: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return 1;
  }
  try {
    const front = compileSource(source);
    if (front.diagnostics.length)
      io.err(
        `${renderDiagnostics(front.diagnostics, file, source, { color: process.stderr.isTTY })}\n\n${summary(front.diagnostics)}`,
      );
    if (hasErrors(front.diagnostics) || !front.graph) return 1;
    const picture = format === "svg" ? svgDiagram(front.graph) : dotDiagram(front.graph);
    if (output === undefined) {
      io.out(picture.trimEnd());
      return 0;
    }
    try {
      mkdirSync(dirname(output), { recursive: true });
      // A kill mid-write leaves the old picture or the new one, never half of one.
      replaceFileAtomically(output, picture);
    } catch (e) {
      io.err(`alexc: cannot write ${output}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return 1;
    }
    return 0;
  } catch (e) {
    io.err(`alexc: internal error (this is a bug in alexc, please report it):\n${(e as Error).stack ?? e}`);
    return 70;
  }
}
