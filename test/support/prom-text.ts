// A reader for Prometheus' text exposition format, enough for tests to look up samples
// by name and labels and to list which metric names an endpoint exposes.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** Family names from # TYPE lines. */
  families: Map<string, string>;
  /** Every name a query may use: families plus histogram/summary series (_bucket, _sum, _count). */
  names: Set<string>;
  samples: Sample[];
}

const SAMPLE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string): Exposition {
  const families = new Map<string, string>();
  const names = new Set<string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) {
      families.set(t[1]!, t[2]!);
      names.add(t[1]!);
      if (t[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${t[1]}${s}`);
      if (t[2] === 'summary') for (const s of ['_sum', '_count']) names.add(`${t[1]}${s}`);
      continue;
    }
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = SAMPLE_RE.exec(line);
    if (!m) throw new Error(`exposition: cannot read line ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(LABEL_RE)) labels[l[1]!] = l[2]!.replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    samples.push({ name: m[1]!, labels, value: Number(m[4]) });
    names.add(m[1]!);
  }
  return { families, names, samples };
}

/** The value of the one sample whose labels include `want`; throws when none or several match. */
export function sampleValue(e: Exposition, name: string, want: Record<string, string>): number {
  const hits = e.samples.filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`${name}${JSON.stringify(want)}: ${hits.length} samples match (${JSON.stringify(e.samples.filter((s) => s.name === name))})`);
  return hits[0]!.value;
}
