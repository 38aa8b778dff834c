// Finds the metric names a PromQL expression (or a Grafana template query) reads. A
// small tokenizer rather than a full parser: it removes what cannot be a metric name
// (strings, label matchers, ranges, grouping clauses, function calls, keywords, numbers)
// and refuses text it does not understand, so a dashboard typo cannot slip through.

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2', 'inf', 'nan', 'Inf', 'NaN']);
const IDENT = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;

export class PromQLReadError extends Error {}

export function metricNamesInPromQL(input: string): string[] {
  // Grafana's label_values(metric, label) template function names its metric first.
  const lv = /^\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,/.exec(input);
  if (lv) return [lv[1]!];
  const s = input
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^{}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  if (/[{}[\]]/.test(s)) throw new PromQLReadError(`unbalanced braces or brackets in ${JSON.stringify(input)}`);
  const names = new Set<string>();
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/[\s(),+\-*/%^=!<>"]/.test(c)) {
      i++;
      continue;
    }
    if (/[0-9.]/.test(c)) {
      const m = /^(?:0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?[smhdwy]?)/.exec(s.slice(i));
      if (!m) throw new PromQLReadError(`cannot read number at ${JSON.stringify(s.slice(i, i + 20))} in ${JSON.stringify(input)}`);
      i += m[0].length;
      continue;
    }
    IDENT.lastIndex = i;
    const m = IDENT.exec(s);
    if (!m) throw new PromQLReadError(`unexpected ${JSON.stringify(c)} in ${JSON.stringify(input)}`);
    i += m[0].length;
    const rest = s.slice(i).trimStart();
    if (rest.startsWith('(')) continue; // a function or aggregation
    if (KEYWORDS.has(m[0])) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** Every PromQL expression in a Grafana dashboard: panel targets (rows included) and template queries. */
export function dashboardExpressions(dashboard: any): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const visit = (panels: any[], path: string) => {
    panels.forEach((p, i) => {
      const where = `${path}[${i}] "${p.title ?? ''}"`;
      for (const t of p.targets ?? []) if (typeof t.expr === 'string') out.push({ where: `${where} ${t.refId ?? ''}`, expr: t.expr });
      if (Array.isArray(p.panels)) visit(p.panels, `${where}.panels`);
    });
  };
  visit(dashboard.panels ?? [], 'panels');
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    if (typeof q === 'string') out.push({ where: `templating.${v.name}`, expr: q });
  }
  return out;
}
