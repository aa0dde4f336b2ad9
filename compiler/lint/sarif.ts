// SARIF 2.1.0 (OASIS, https://docs.oasis-open.org/sarif/sarif/v2.1.0/), the format CI code scanning
// reads (GitHub's upload-sarif action) to show findings inline on a pull request. One run, alexc as
// the driver; every lint rule is described once in `tool.driver.rules`, results point at them by
// id and index. SARIF regions use 1-based lines and columns with an exclusive end column, which is
// exactly alexc's half-open span.
import type { Span } from "../../grammar/ast.ts";
import { catalogue, type Diagnostic, type Severity } from "../diagnostics.ts";
import type { LintRuleInfo } from "./rule.ts";

export const SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json";

const level: Record<Severity, "error" | "warning" | "note"> = {
  error: "error",
  warning: "warning",
  info: "note",
};

export interface SarifFile {
  /** The artifact's URI: a path relative to the repository root, with forward slashes. */
  uri: string;
  diagnostics: readonly Diagnostic[];
}

export interface SarifTool {
  version: string;
  /** Absolute URI of the tool's documentation; SARIF allows it to be absent. */
  informationUri?: string;
  rules: readonly LintRuleInfo[];
}

const region = (span: Span) => ({
  startLine: span.start.line,
  startColumn: span.start.column,
  endLine: span.end.line,
  endColumn: span.end.column,
  charOffset: span.start.offset,
  charLength: span.end.offset - span.start.offset,
});

const location = (uri: string, span: Span | undefined) => ({
  physicalLocation: { artifactLocation: { uri }, ...(span ? { region: region(span) } : {}) },
});

/** The SARIF log of one lint run over `files`. */
export function toSarif(files: readonly SarifFile[], tool: SarifTool): object {
  const rules: object[] = [];
  const index = new Map<string, number>();
  const describe = (id: string, rule: object) => {
    index.set(id, rules.length);
    rules.push(rule);
  };
  for (const r of tool.rules)
    describe(r.code, {
      id: r.code,
      name: r.name,
      shortDescription: { text: r.summary },
      fullDescription: { text: r.explanation.split("\n\n")[0].replace(/\s*\n\s*/g, " ") },
      defaultConfiguration: { level: level[r.severity] },
      help: { text: r.explanation, markdown: r.explanation },
      properties: { tags: ["alexc", "lint"] },
    });
  // Check errors and warnings from `alexc check` are results too; describe the ones that occur.
  for (const f of files)
    for (const d of f.diagnostics)
      if (!index.has(d.code)) {
        const entry = catalogue[d.code];
        describe(d.code, {
          id: d.code,
          shortDescription: { text: entry.template },
          fullDescription: { text: `reported by \`alexc check\`: ${entry.template}` },
          defaultConfiguration: { level: level[entry.severity] },
          help: { text: `See \`alexc explain ${d.code}\`.` },
          properties: { tags: ["alexc", "check"] },
        });
      }

  const results = files.flatMap((f) =>
    f.diagnostics.map((d) => {
      const extra = [...d.notes.map((n) => `note: ${n}`), ...(d.help ? [`help: ${d.help}`] : [])];
      return {
        ruleId: d.code,
        ruleIndex: index.get(d.code),
        level: level[d.severity],
        message: { text: [d.message, ...extra].join("\n") },
        locations: [location(f.uri, d.span)],
        ...(d.labels.length
          ? {
              relatedLocations: d.labels.map((l, id) => ({
                id,
                ...location(f.uri, l.span),
                message: { text: l.message },
              })),
            }
          : {}),
        ...(d.fix
          ? {
              fixes: [
                {
                  description: { text: d.fix.description },
                  artifactChanges: [
                    {
                      artifactLocation: { uri: f.uri },
                      replacements: d.fix.edits.map((e) => ({
                        deletedRegion: region(e.span),
                        insertedContent: { text: e.text },
                      })),
                    },
                  ],
                },
              ],
            }
          : {}),
      };
    }),
  );

  return {
    $schema: SARIF_SCHEMA,
    version: "2.1.0",
    runs: [
      {
        tool: {
          driver: {
            name: "alexc",
            version: tool.version,
            semanticVersion: tool.version,
            ...(tool.informationUri ? { informationUri: tool.informationUri } : {}),
            rules,
          },
        },
        artifacts: files.map((f) => ({ location: { uri: f.uri } })),
        columnKind: "utf16CodeUnits",
        results,
      },
    ],
  };
}
