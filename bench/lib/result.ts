// One measured bar: its figure, the product bar it is judged against and a reference measured in
// the same run, printed as one line and kept for the JSON file.

export interface BarResult {
  bench: string;
  name: string;
  figure: number;
  unit: string;
  /** Absent for figures reported for information only. */
  bar?: { op: '>=' | '<'; value: number };
  met?: boolean;
  reference?: { label: string; figure: number; unit: string; also?: string };
  /** figure / reference.figure */
  ratio?: number;
  /** Anything else worth keeping (counts, sub-timings, percentiles). */
  details?: Record<string, unknown>;
}

export function judge(
  bench: string,
  name: string,
  measured: { figure: number; unit: string },
  bar: BarResult['bar'] | undefined,
  extra: { reference?: BarResult['reference']; details?: Record<string, unknown> } = {},
): BarResult {
  const met = bar === undefined ? undefined : bar.op === '>=' ? measured.figure >= bar.value : measured.figure < bar.value;
  const ratio = extra.reference && extra.reference.figure > 0 ? measured.figure / extra.reference.figure : undefined;

  return { bench, name, ...measured, bar, met, reference: extra.reference, ratio, details: extra.details };
}

export function formatNumber(value: number): string {
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;

  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatResult(result: BarResult): string {
  const figure = `${formatNumber(result.figure)} ${result.unit}`;
  const bar = result.bar ? `bar ${result.bar.op} ${formatNumber(result.bar.value)}` : 'no bar';
  const ref = result.reference
    ? `ref: ${result.reference.label} ${formatNumber(result.reference.figure)} ${result.reference.unit}${result.ratio === undefined ? '' : ` (${result.ratio.toFixed(2)}x)`}${result.reference.also ? `; ${result.reference.also}` : ''}`
    : 'ref: -';

  return `${result.name.padEnd(34)} ${figure.padStart(18)}   ${bar.padEnd(16)} ${(result.met === undefined ? 'info' : result.met ? 'met' : 'NOT MET').padEnd(8)} ${ref}`;
}
