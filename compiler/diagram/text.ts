// Text for the architecture diagram: number and shape formatting, width estimates for box sizing,
// and the escaping that keeps user-chosen names from breaking the SVG or DOT syntax.

/** 60965224 → "60,965,224", independent of the machine's locale (the output must be reproducible). */
export function groupDigits(n: number): string {
  const [whole, fraction] = String(Math.abs(n)).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${n < 0 ? "-" : ""}${grouped}${fraction ? `.${fraction}` : ""}`;
}

/** [48, 55, 55] → "48×55×55"; the loss's [] → "scalar". */
export function shapeText(shape: readonly number[]): string {
  return shape.length ? shape.join("×") : "scalar";
}

export function paramsText(n: number): string {
  return `${groupDigits(n)} param${n === 1 ? "" : "s"}`;
}

/**
 * Estimated width of `text` in DejaVu Sans (the diagram's first font, and what a Debian Chromium
 * falls back to). Over-estimates slightly: a box a few pixels too wide reads fine, a clipped label
 * does not.
 */
export function textWidth(text: string, fontSize: number, bold = false): number {
  let em = 0;
  for (const ch of text) {
    if (/[ilI.,:;'|!]/.test(ch)) em += 0.32;
    else if (ch === " ") em += 0.33;
    else if (/[mwMW]/.test(ch)) em += 0.92;
    else if (/[A-Z]/.test(ch)) em += 0.72;
    else em += 0.64;
  }
  return em * fontSize * (bold ? 1.1 : 1);
}

/** Characters XML 1.0 forbids outright (C0 controls other than tab, newline, carriage return). */
const xmlForbidden = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

/** Escapes text content: the characters that would start markup, and forbidden ones. */
export function xmlText(text: string): string {
  return text
    .replace(xmlForbidden, "\uFFFD")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;");
}

/** Escapes a value for a double-quoted attribute. */
export function xmlAttr(text: string): string {
  return xmlText(text).replace(/"/g, "&quot;");
}

/**
 * A DOT double-quoted string. DOT's only quoted-string escape is `\"`, but Graphviz then reads
 * backslash sequences in labels (`\n`, `\N`, `\G`, …), so a literal backslash is doubled and line
 * breaks become `\n` (centred lines).
 */
export function dotQuote(text: string): string {
  const body = text
    .replace(/\\/g, "\\\\")
    .replace(/"/g, '\\"')
    .replace(/\r\n|\r|\n/g, "\\n");
  return `"${body}"`;
}

/** Coordinates with at most one decimal, so that the output is stable and small. */
export function coord(n: number): string {
  const r = Math.round(n * 10) / 10;
  return Object.is(r, -0) ? "0" : String(r);
}
