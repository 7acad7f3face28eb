/** Small statistics for benchmark samples: quantiles, median and spread across rounds. */

/** The q-quantile (0..1) of `values`, linearly interpolated; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  const low = sorted[lo] as number;
  const high = sorted[hi] as number;
  return low + (high - low) * (at - lo);
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Latency percentiles of one measurement, in milliseconds. */
export interface Percentiles {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function percentiles(samples: readonly number[]): Percentiles {
  return {
    n: samples.length,
    p50: quantile(samples, 0.5),
    p99: quantile(samples, 0.99),
    max: samples.length ? Math.max(...samples) : Number.NaN,
  };
}

/** One figure across rounds: the median, and the range as the spread. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  rounds: number;
}

export function summarize(values: readonly number[]): Summary {
  const finite = values.filter(Number.isFinite);
  return {
    median: median(finite),
    min: finite.length ? Math.min(...finite) : Number.NaN,
    max: finite.length ? Math.max(...finite) : Number.NaN,
    rounds: finite.length,
  };
}

/** Half the range as a percentage of the median (the "±" of a summary). */
export function spreadPct(summary: Summary): number {
  return summary.median === 0 ? Number.NaN : ((summary.max - summary.min) / 2 / Math.abs(summary.median)) * 100;
}

/** `a / b` as a ratio, NaN when undefined. */
export function ratio(a: number, b: number): number {
  return b === 0 || !Number.isFinite(a) || !Number.isFinite(b) ? Number.NaN : a / b;
}

/**
 * A ratio across rounds: the ratio of the two medians, with the range of the per-round
 * ratios as its spread (each round measures both sides back to back).
 */
export function ratioSummary(numerators: readonly number[], denominators: readonly number[]): Summary {
  const perRound = summarize(numerators.map((n, i) => ratio(n, denominators[i] ?? Number.NaN)));
  return { ...perRound, median: ratio(median(numerators.filter(Number.isFinite)), median(denominators.filter(Number.isFinite))) };
}

/** A number for a table: 3 significant digits, thousands separated, "n/a" when not finite. */
export function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  const rounded = Number(value.toPrecision(digits));
  const abs = Math.abs(rounded);
  if (abs === 0) return '0';
  const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(abs)));
  return rounded.toFixed(Math.min(decimals, 4));
}

/** "median (min–max)" */
export function fmtSummary(summary: Summary, digits = 3): string {
  if (summary.rounds <= 1) return fmt(summary.median, digits);
  return `${fmt(summary.median, digits)} (${fmt(summary.min, digits)}–${fmt(summary.max, digits)})`;
}

/** A ratio as "0.93x". */
export function fmtRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : 'n/a';
}
