// The alexc AST: plain, serialisable records with source spans. Produced by grammar/to-ast.ts,
// consumed by compiler/check. Recovered (partial) nodes are allowed: a missing child is `undefined`
// or an `ErrorValue`, never a thrown exception.

/** A position in the source. `line` and `column` are 1-based; `offset` is a 0-based UTF-16 index. */
export interface Position {
  offset: number;
  line: number;
  column: number;
}

/** Half-open range [start, end) in the source. */
export interface Span {
  start: Position;
  end: Position;
}

export interface Identifier {
  kind: "Identifier";
  name: string;
  span: Span;
}

// ---- values (attribute values, constants, shapes) ------------------------------------------------

export type Value =
  | NumberValue
  | StringValue
  | NameValue
  | CallValue
  | TupleValue
  | ListValue
  | BinaryValue
  | UnaryValue
  | ErrorValue;

/** `96`, `1e-4`, `0.75`. `text` keeps the spelling for the formatter and diagnostics. */
export interface NumberValue {
  kind: "Number";
  value: number;
  text: string;
  span: Span;
}
export interface StringValue {
  kind: "String";
  value: string;
  span: Span;
}
/** A bare name: a constant, a block parameter, or an enumeration word such as `floor` or `local`. */
export interface NameValue {
  kind: "Name";
  name: string;
  span: Span;
}
/** `normal(0.01)`, `on(0)`. */
export interface CallValue {
  kind: "Call";
  callee: Identifier;
  args: Value[];
  span: Span;
}
/** `(0, 3)`: two or more values in parentheses (one value in parentheses is just grouping). */
export interface TupleValue {
  kind: "Tuple";
  items: Value[];
  span: Span;
}
/** `[3, 224, 224]`. */
export interface ListValue {
  kind: "List";
  items: Value[];
  span: Span;
}
export interface BinaryValue {
  kind: "Binary";
  op: "+" | "-" | "*" | "/";
  left: Value;
  right: Value;
  span: Span;
}
export interface UnaryValue {
  kind: "Unary";
  op: "-";
  operand: Value;
  span: Span;
}
/** Stands where the parser recovered from a syntax error. The checker never reports on it again. */
export interface ErrorValue {
  kind: "Error";
  span: Span;
}

// ---- statements -------------------------------------------------------------------------------------

/** `name: value` inside a call's argument list or a section. */
export interface NamedArg {
  kind: "NamedArg";
  name: Identifier;
  value: Value;
  span: Span;
}

/** `input image: f32[3, 224, 224]` */
export interface InputDecl {
  kind: "Input";
  name: Identifier;
  dtype: Identifier;
  shape: Value[];
  span: Span;
}

/** `classes: 1000`, `towers: 2` — properties of the network. */
export interface PropertyDecl {
  kind: "Property";
  name: Identifier;
  value: Value;
  span: Span;
}

/** `const std = 0.01` */
export interface ConstDecl {
  kind: "Const";
  name: Identifier;
  value: Value;
  span: Span;
}

/** One parameter of a block: `filters` or `stride = 1`. */
export interface BlockParam {
  kind: "BlockParam";
  name: Identifier;
  default?: Value;
  span: Span;
}

/**
 * `block conv_relu(x, filters, stride = 1) { ... }`. Positional arguments at a call bind to the
 * parameters in order, named arguments by name; a parameter may be bound to a tensor or a value.
 * The block's output is its last layer. Inner layers are named `<instance>.<inner>`.
 */
export interface BlockDecl {
  kind: "Block";
  name: Identifier;
  params: BlockParam[];
  body: LayerStmt[];
  span: Span;
}

/**
 * `conv1 = conv(image, filters: 96, kernel: 11)`: positional arguments are tensors (layer inputs),
 * named arguments are attributes. `op` names a built-in layer kind or a block.
 */
export interface LayerStmt {
  kind: "Layer";
  name: Identifier;
  op: Identifier;
  inputs: Value[];
  attrs: NamedArg[];
  span: Span;
}

export type NetworkItem = InputDecl | PropertyDecl | ConstDecl | BlockDecl | LayerStmt;

export interface NetworkDecl {
  kind: "Network";
  name: Identifier;
  items: NetworkItem[];
  span: Span;
}

/**
 * `train { ... }` or `data { ... }`: a reserved section of `name: value` entries. Its meaning is
 * defined by later stages (training recipe, data pipeline); the grammar only records it.
 */
export interface SectionDecl {
  kind: "Section";
  section: "train" | "data";
  name: Identifier;
  entries: NamedArg[];
  span: Span;
}

export interface Comment {
  text: string;
  span: Span;
}

export interface SourceFile {
  kind: "SourceFile";
  items: (NetworkDecl | SectionDecl)[];
  /** Comments in source order, kept for the formatter. */
  comments: Comment[];
  span: Span;
}
