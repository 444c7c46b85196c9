/**
 * Column printer in the shape of Go's text/tabwriter as Cilium's CLI uses it
 * (minwidth 5, padding 3 in most commands): cells left-aligned, columns as
 * wide as their widest cell plus padding, last column unpadded.
 *
 * API: formatTable(rows, { padding? }) -> string
 */

/** Lay out rows (first row usually the header) as aligned columns. */
export function formatTable(rows: readonly (readonly string[])[], opts: { padding?: number; minWidth?: number } = {}): string {
  const padding = opts.padding ?? 3;
  const minWidth = opts.minWidth ?? 5;
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(Math.max(widths[i]!, minWidth) + padding)))
        .join('')
        .trimEnd(),
    )
    .join('\n');
}
