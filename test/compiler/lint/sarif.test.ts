import { describe, expect, it } from "vitest";
import { lintRules } from "../../../compiler/lint/index.ts";
import { toSarif } from "../../../compiler/lint/sarif.ts";
import { alexnetWith, lint } from "./helpers.ts";

interface Log {
  $schema: string;
  version: string;
  runs: {
    tool: {
      driver: { name: string; version: string; informationUri?: string; rules: Record<string, any>[] };
    };
    artifacts: { location: { uri: string } }[];
    results: Record<string, any>[];
  }[];
}

describe("SARIF 2.1.0", () => {
  const source = alexnetWith(
    ["  const lrn_k = 2\n", "  const lrn_k = 2\n  const spare = 1\n"],
    [
      "conv4 = conv(relu3, filters: 384, kernel: 3, pad: 1, towers: local",
      "conv4 = conv(relu3, filters: 384, kernel: 3, pad: 1, towers: cross",
    ],
  );
  const log = toSarif([{ uri: "models/alexnet.net", diagnostics: lint(source) }], {
    version: "0.1.0",
    informationUri: "https://example.org/alexc",
    rules: lintRules,
  }) as Log;
  const run = log.runs[0];

  it("has the log's schema, version and one run with alexc as the driver", () => {
    expect(log.$schema).toBe("https://json.schemastore.org/sarif-2.1.0.json");
    expect(log.version).toBe("2.1.0");
    expect(log.runs).toHaveLength(1);
    expect(run.tool.driver).toMatchObject({
      name: "alexc",
      version: "0.1.0",
      informationUri: "https://example.org/alexc",
    });
    expect(run.artifacts).toEqual([{ location: { uri: "models/alexnet.net" } }]);
  });

  it("describes every lint rule with its descriptions, default level and help", () => {
    const rules = run.tool.driver.rules;
    expect(rules.map((r) => r.id)).toEqual(lintRules.map((r) => r.code));
    const tp = rules.find((r) => r.id === "AX5006")!;
    expect(tp).toMatchObject({
      name: "tower_pattern",
      shortDescription: { text: lintRules.find((r) => r.code === "AX5006")!.summary },
      defaultConfiguration: { level: "note" },
    });
    expect(tp.fullDescription.text).toMatch(/^In the paper the two towers exchange features only at conv3/);
    expect(tp.help.text).toContain("Fix:");
  });

  it("gives each result its rule, level, message and region (1-based, end column exclusive)", () => {
    const [unused, pattern] = run.results;
    expect(unused).toMatchObject({
      ruleId: "AX5002",
      ruleIndex: run.tool.driver.rules.findIndex((r) => r.id === "AX5002"),
      level: "warning",
      locations: [
        {
          physicalLocation: {
            artifactLocation: { uri: "models/alexnet.net" },
            region: { startLine: 15, startColumn: 9, endLine: 15, endColumn: 14 },
          },
        },
      ],
    });
    expect(unused.message.text.split("\n")[0]).toBe("constant `spare` is never used");
    expect(pattern).toMatchObject({ ruleId: "AX5006", level: "note" });
    expect(pattern.message.text).toContain("help: write `towers: local` to follow the paper");
  });

  it("carries fixes as artifact changes", () => {
    const [unused] = run.results;
    expect(unused.fixes).toEqual([
      {
        description: { text: "remove `const spare`" },
        artifactChanges: [
          {
            artifactLocation: { uri: "models/alexnet.net" },
            replacements: [
              {
                deletedRegion: expect.objectContaining({
                  startLine: 15,
                  startColumn: 1,
                  endLine: 16,
                  endColumn: 1,
                }),
                insertedContent: { text: "" },
              },
            ],
          },
        ],
      },
    ]);
  });

  it("describes the check codes that occur, so every result's rule is in the driver", () => {
    const broken = alexnetWith(["relu3 = relu(conv3)", "relu3 = reluu(conv3)"]);
    const l = toSarif([{ uri: "b.net", diagnostics: lint(broken) }], {
      version: "0",
      rules: lintRules,
    }) as Log;
    const r = l.runs[0];
    expect(r.results[0]).toMatchObject({ ruleId: "AX2001", level: "error" });
    expect(r.tool.driver.rules[r.results[0].ruleIndex]).toMatchObject({
      id: "AX2001",
      defaultConfiguration: { level: "error" },
    });
    expect(r.tool.driver.informationUri).toBeUndefined();
  });
});
