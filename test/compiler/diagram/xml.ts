// A strict, small XML 1.0 parser for the tests: enough to prove an SVG well-formed (one root, tags
// nested and matched, attributes quoted and unique, only the five predefined entities and character
// references, no raw `<` or `&` in text, no forbidden characters) and to walk it. Throws on the
// first error, with the offset.

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** The element's own text (entity-decoded), children's text excluded. */
  text: string;
}

const nameStart = /[A-Za-z_:]/;
const nameChar = /[-A-Za-z0-9_:.]/;
const entities: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

export function parseXml(src: string): XmlElement {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`XML error at ${i}: ${why} near ${JSON.stringify(src.slice(i, i + 30))}`);
  };
  const bad = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.exec(src);
  if (bad) {
    i = bad.index;
    fail("forbidden character");
  }
  const skipSpace = () => {
    while (i < src.length && /\s/.test(src[i])) i++;
  };
  const name = () => {
    if (!nameStart.test(src[i] ?? "")) fail("expected a name");
    const start = i++;
    while (i < src.length && nameChar.test(src[i])) i++;
    return src.slice(start, i);
  };
  /** Decodes entity and character references in text or an attribute value up to `end`. */
  const decode = (end: number) => {
    let out = "";
    while (i < end) {
      const ch = src[i];
      if (ch === "<") fail("raw `<`");
      if (ch !== "&") {
        out += ch;
        i++;
        continue;
      }
      const semi = src.indexOf(";", i);
      if (semi < 0 || semi > end) fail("unterminated reference");
      const ref = src.slice(i + 1, semi);
      let value: string | undefined = entities[ref];
      if (/^#[0-9]+$/.test(ref)) value = String.fromCodePoint(Number(ref.slice(1)));
      else if (/^#x[0-9A-Fa-f]+$/.test(ref)) value = String.fromCodePoint(parseInt(ref.slice(2), 16));
      if (value === undefined) fail(`unknown reference &${ref};`);
      out += value;
      i = semi + 1;
    }
    return out;
  };
  const skipMisc = () => {
    for (;;) {
      skipSpace();
      if (src.startsWith("<!--", i)) {
        const end = src.indexOf("-->", i + 4);
        if (end < 0) fail("unterminated comment");
        if (src.slice(i + 4, end).includes("--")) fail("`--` inside a comment");
        i = end + 3;
      } else if (src.startsWith("<?", i)) {
        const end = src.indexOf("?>", i);
        if (end < 0) fail("unterminated processing instruction");
        i = end + 2;
      } else return;
    }
  };
  const element = (): XmlElement => {
    if (src[i] !== "<") fail("expected `<`");
    i++;
    const el: XmlElement = { name: name(), attrs: {}, children: [], text: "" };
    for (;;) {
      const before = i;
      skipSpace();
      if (src.startsWith("/>", i)) {
        i += 2;
        return el;
      }
      if (src[i] === ">") {
        i++;
        break;
      }
      if (i === before) fail("expected whitespace before an attribute");
      const key = name();
      skipSpace();
      if (src[i] !== "=") fail("expected `=`");
      i++;
      skipSpace();
      const quote = src[i];
      if (quote !== '"' && quote !== "'") fail("attribute value not quoted");
      const end = src.indexOf(quote, i + 1);
      if (end < 0) fail("unterminated attribute value");
      i++;
      if (key in el.attrs) fail(`duplicate attribute ${key}`);
      el.attrs[key] = decode(end);
      i = end + 1;
    }
    for (;;) {
      if (i >= src.length) fail(`unclosed <${el.name}>`);
      if (src.startsWith("</", i)) {
        i += 2;
        const closing = name();
        if (closing !== el.name) fail(`</${closing}> closes <${el.name}>`);
        skipSpace();
        if (src[i] !== ">") fail("expected `>`");
        i++;
        return el;
      }
      if (src.startsWith("<!--", i)) {
        const end = src.indexOf("-->", i + 4);
        if (end < 0) fail("unterminated comment");
        i = end + 3;
      } else if (src.startsWith("<![CDATA[", i)) {
        const end = src.indexOf("]]>", i);
        if (end < 0) fail("unterminated CDATA");
        el.text += src.slice(i + 9, end);
        i = end + 3;
      } else if (src[i] === "<") el.children.push(element());
      else {
        const next = src.indexOf("<", i);
        const end = next < 0 ? src.length : next;
        if (src.slice(i, end).includes("]]>")) fail("`]]>` in text");
        el.text += decode(end);
      }
    }
  };

  skipMisc();
  const root = element();
  skipMisc();
  if (i !== src.length) fail("content after the root element");
  return root;
}

/** Every element below `root` (root included), depth first, in document order. */
export function allElements(root: XmlElement): XmlElement[] {
  return [root, ...root.children.flatMap(allElements)];
}

/** The element's text and all its descendants' text, in document order. */
export function deepText(el: XmlElement): string {
  return el.text + el.children.map(deepText).join("");
}

export const hasClass = (el: XmlElement, cls: string) => (el.attrs.class ?? "").split(/\s+/).includes(cls);
