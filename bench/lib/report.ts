/** What a benchmark hands back, and how it is printed (console table) and written (Markdown). */
import type { MachineFacts } from './processes.js';

/** One line of the summary table every run prints. */
export interface HeadlineRow {
  metric: string;
  baseline: string;
  switchboard: string;
  ratio: string;
  target: string;
  /** 'met', 'missed', or '' when there is no target. */
  verdict: string;
}

export interface Plot {
  /** File name under bench/results/. */
  file: string;
  title: string;
  svg: string;
}

/** What a section's renderer needs besides the figures (also rebuilt from results/<name>.json). */
export interface RenderMeta {
  machine: MachineFacts;
  wallS: number;
  rounds: number;
  pin: boolean;
}

export interface Section {
  name: string;
  title: string;
  machine: MachineFacts;
  wallS: number;
  headline: HeadlineRow[];
  /** The section's Markdown body (tables, method, analysis), without its title. */
  markdown: string;
  plots: Plot[];
  /** The raw figures (kept as JSON next to RESULTS.md). */
  data: unknown;
}

/** A Markdown table. */
export function markdownTable(header: string[], rows: string[][]): string {
  const escape = (cell: string): string => cell.replace(/\|/g, '\\|');
  const lines = [`| ${header.map(escape).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const row of rows) lines.push(`| ${row.map(escape).join(' | ')} |`);
  return lines.join('\n');
}

/** A fixed-width text table for the console. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export const HEADLINE_HEADER = ['metric', 'baseline', 'switchboard', 'ratio', 'target', 'verdict'];

export function headlineRows(rows: HeadlineRow[]): string[][] {
  return rows.map((r) => [r.metric, r.baseline, r.switchboard, r.ratio, r.target, r.verdict]);
}

/** "met"/"missed" for a ratio against a bound. */
export function verdict(value: number, bound: number, direction: 'atLeast' | 'atMost'): string {
  if (!Number.isFinite(value)) return 'n/a';
  return (direction === 'atLeast' ? value >= bound : value <= bound) ? 'met' : 'missed';
}

export function machineLine(machine: MachineFacts): string {
  return `measured ${machine.date} on ${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, load average ${machine.loadAverage.join(' / ')} at the start; ${machine.pinning}${machine.loadGenerator ? `; load generator: ${machine.loadGenerator}` : ''}`;
}
