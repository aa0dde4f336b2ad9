// Document formatting through grammar/format.ts, the one formatter `alexc fmt` also uses. A document
// with syntax errors is left alone (no edits). The edit covers only the changed middle of the text,
// so the editor keeps the cursor and folds of untouched lines.
import type { TextEdit } from "vscode-languageserver";
import type { TextDocument } from "vscode-languageserver-textdocument";
import { formatSource } from "../../grammar/format.ts";

const isLowSurrogate = (code: number) => code >= 0xdc00 && code <= 0xdfff;

export function formatEdits(doc: TextDocument): TextEdit[] {
  const before = doc.getText();
  const result = formatSource(before);
  if (!result.ok || result.text === before) return [];
  const after = result.text;
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let end = 0;
  while (
    end < before.length - start &&
    end < after.length - start &&
    before[before.length - 1 - end] === after[after.length - 1 - end]
  )
    end++;
  // Never cut a surrogate pair: the editor would see half a character.
  if (start > 0 && isLowSurrogate(before.charCodeAt(start))) start--;
  if (end > 0 && isLowSurrogate(before.charCodeAt(before.length - end))) end--;
  return [
    {
      range: { start: doc.positionAt(start), end: doc.positionAt(before.length - end) },
      newText: after.slice(start, after.length - end),
    },
  ];
}
