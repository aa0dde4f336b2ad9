// Joining per-chunk host arrays (micro-steps, devices) back into one, in order.

/** `parts` end to end, as one array of their type (the part itself when there is one). */
export function concat<T extends Float32Array | Int32Array>(parts: T[]): T {
  if (parts.length === 1) return parts[0];
  const make = parts[0].constructor as new (length: number) => T;
  const out = new make(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
