// A parser for the DOT language (graphviz.org/doc/info/lang.html) without HTML strings and ports:
// enough to prove the emitter's output is DOT and to read back its nodes, clusters and edges.
// Throws on the first syntax error.

export interface DotEdge {
  from: string;
  to: string;
  attrs: Record<string, string>;
}

export interface DotGraph {
  directed: boolean;
  name: string;
  graphAttrs: Record<string, string>;
  /** Node statements: id → attributes (later statements add to earlier ones). */
  nodes: Map<string, Record<string, string>>;
  /** Subgraph name → the node ids stated inside it (nested ones included). */
  subgraphs: Map<string, string[]>;
  edges: DotEdge[];
}

type Token = { kind: "id" | "punct"; text: string; quoted: boolean };

const keywords = new Set(["strict", "graph", "digraph", "node", "edge", "subgraph"]);

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const rest = src.slice(i);
    const space = /^(\s+|\/\/[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\/)/.exec(rest);
    if (space) {
      i += space[0].length;
      continue;
    }
    if (rest[0] === '"') {
      let j = 1;
      let text = "";
      for (; j < rest.length && rest[j] !== '"'; j++) {
        // DOT's one escape: \" is a quote; every other backslash stays (Graphviz reads it later).
        if (rest[j] === "\\" && rest[j + 1] === '"') {
          text += '"';
          j++;
        } else if (rest[j] === "\\" && rest[j + 1] === "\\") {
          text += "\\\\";
          j++;
        } else text += rest[j];
      }
      if (j >= rest.length) throw new Error(`DOT: unterminated string at ${i}`);
      tokens.push({ kind: "id", text, quoted: true });
      i += j + 1;
      continue;
    }
    const word = /^([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*|-?(\.[0-9]+|[0-9]+(\.[0-9]*)?))/.exec(
      rest,
    );
    if (word) {
      tokens.push({ kind: "id", text: word[0], quoted: false });
      i += word[0].length;
      continue;
    }
    const punct = /^(->|--|[{}[\]=;,:])/.exec(rest);
    if (!punct) throw new Error(`DOT: unexpected ${JSON.stringify(rest[0])} at ${i}`);
    tokens.push({ kind: "punct", text: punct[0], quoted: false });
    i += punct[0].length;
  }
  return tokens;
}

export function parseDot(src: string): DotGraph {
  const tokens = tokenize(src);
  let p = 0;
  const peek = (k = 0) => tokens[p + k];
  const isKeyword = (t: Token | undefined, word: string) =>
    !!t && t.kind === "id" && !t.quoted && t.text.toLowerCase() === word;
  const expect = (text: string) => {
    const t = tokens[p++];
    if (!t || t.kind !== "punct" || t.text !== text)
      throw new Error(`DOT: expected \`${text}\`, got ${t?.text}`);
  };
  const id = (): string => {
    const t = tokens[p++];
    if (!t || t.kind !== "id" || (!t.quoted && keywords.has(t.text.toLowerCase())))
      throw new Error(`DOT: expected an ID, got ${t?.text}`);
    return t.text;
  };
  const attrList = (): Record<string, string> => {
    const attrs: Record<string, string> = {};
    while (peek()?.text === "[" && peek()?.kind === "punct") {
      p++;
      while (!(peek()?.kind === "punct" && peek()?.text === "]")) {
        const key = id();
        expect("=");
        attrs[key] = id();
        if (peek()?.kind === "punct" && (peek().text === "," || peek().text === ";")) p++;
      }
      expect("]");
    }
    return attrs;
  };

  if (isKeyword(peek(), "strict")) p++;
  const directed = isKeyword(peek(), "digraph");
  if (!directed && !isKeyword(peek(), "graph")) throw new Error("DOT: expected graph or digraph");
  p++;
  const graph: DotGraph = {
    directed,
    name: peek()?.kind === "id" ? id() : "",
    graphAttrs: {},
    nodes: new Map(),
    subgraphs: new Map(),
    edges: [],
  };
  const edgeOp = directed ? "->" : "--";

  /** Parses `{ stmt_list }`; returns the node ids it mentions. Graph attributes count at the top only. */
  const block = (top: boolean): string[] => {
    expect("{");
    const mentioned: string[] = [];
    const mention = (n: string) => {
      if (!graph.nodes.has(n)) graph.nodes.set(n, {});
      mentioned.push(n);
    };
    /** A node id or a subgraph: the node ids it stands for. */
    const operand = (): string[] => {
      if (isKeyword(peek(), "subgraph") || (peek()?.kind === "punct" && peek().text === "{"))
        return subgraph();
      const n = id();
      mention(n);
      return [n];
    };
    const subgraph = (): string[] => {
      let name = "";
      if (isKeyword(peek(), "subgraph")) {
        p++;
        if (peek()?.kind === "id") name = id();
      }
      const inner = block(false);
      if (name) graph.subgraphs.set(name, inner);
      mentioned.push(...inner);
      return inner;
    };
    while (!(peek()?.kind === "punct" && peek().text === "}")) {
      if (!peek()) throw new Error("DOT: unterminated block");
      if (["graph", "node", "edge"].some((k) => isKeyword(peek(), k))) {
        const which = tokens[p++].text.toLowerCase();
        const attrs = attrList();
        if (which === "graph" && top) Object.assign(graph.graphAttrs, attrs);
      } else if (peek(1)?.kind === "punct" && peek(1).text === "=" && peek()?.kind === "id") {
        const key = id();
        expect("=");
        const value = id();
        if (top) graph.graphAttrs[key] = value;
      } else {
        const isNode = !isKeyword(peek(), "subgraph") && !(peek()?.kind === "punct" && peek().text === "{");
        let left = operand();
        if (peek()?.kind === "punct" && (peek().text === "->" || peek().text === "--")) {
          const chain: string[][] = [left];
          while (peek()?.kind === "punct" && (peek().text === "->" || peek().text === "--")) {
            if (tokens[p++].text !== edgeOp)
              throw new Error(`DOT: wrong edge operator for a ${directed ? "digraph" : "graph"}`);
            left = operand();
            chain.push(left);
          }
          const attrs = attrList();
          for (let k = 0; k + 1 < chain.length; k++)
            for (const from of chain[k]) for (const to of chain[k + 1]) graph.edges.push({ from, to, attrs });
        } else if (isNode) Object.assign(graph.nodes.get(left[0])!, attrList());
      }
      if (peek()?.kind === "punct" && peek().text === ";") p++;
    }
    expect("}");
    return mentioned;
  };
  block(true);
  if (p !== tokens.length) throw new Error("DOT: content after the graph");
  return graph;
}

/** A label as Graphviz shows it: `\n`, `\l`, `\r` end lines, `\\` is a backslash, `\"` a quote. */
export function labelText(raw: string): string {
  return raw.replace(/\\(.)/g, (whole, c: string) =>
    c === "n" || c === "l" || c === "r" ? "\n" : c === "\\" || c === '"' ? c : whole,
  );
}
