// l7mesh flow UI: one server-sent-events stream (/v1/flows/stream?last=N) brings the
// stored flows and then the new ones, so no flow falls between a load and a follow.
// The service map draws identities as nodes and one edge per (source, destination,
// verdict); the table lists flows, newest first, filtered in the page.
// Plain browser JavaScript on purpose: no build step, nothing to download.

const MAX_FLOWS = 2000;
const SVG_NS = 'http://www.w3.org/2000/svg';
const VERDICT_ORDER = ['FORWARDED', 'REDIRECTED', 'AUDIT', 'ERROR', 'DROPPED'];

const flows = [];
const nodes = new Map(); // identity -> { identity, name, labels }
const edges = new Map(); // "src>dst>verdict" -> { src, dst, verdict, count, last }
let lost = 0;
const seen = new Set();

const $ = (sel) => document.querySelector(sel);
const statusEl = $('#status');
const tbody = $('#flows tbody');
const form = $('#filters');

function endpointName(e) {
  if (!e) return '?';
  if (e.pod_name) return e.namespace ? `${e.namespace}/${e.pod_name}` : e.pod_name;
  const app = (e.labels || []).find((l) => /(^|:)app=/.test(l));
  if (app) return app.slice(app.indexOf(':') + 1);
  if (e.labels && e.labels.length) return e.labels[0];
  return `identity-${e.identity}`;
}

function flowType(f) {
  if (f.Type === 'L7') return 'l7';
  return f.verdict === 'DROPPED' ? 'drop' : 'trace';
}

function protocols(f) {
  const out = [];
  if (f.l7 && f.l7.http) out.push('http');
  if (f.l7 && f.l7.kafka) out.push('kafka');
  if (f.l4 && f.l4.TCP) out.push('tcp');
  if (f.l4 && f.l4.UDP) out.push('udp');
  return out;
}

function summary(f) {
  const l7 = f.l7 || {};
  if (l7.http) return `${l7.http.protocol || 'HTTP'} ${l7.http.method} ${l7.http.url}${l7.http.code ? ` → ${l7.http.code}` : ''}`;
  if (l7.kafka) {
    const k = l7.kafka;
    return `Kafka ${k.api_key} v${k.api_version} topic=${(k.topics && k.topics.length ? k.topics : [k.topic]).join(',')}${k.client_id ? ` client=${k.client_id}` : ''}`;
  }
  const l4 = f.l4 && (f.l4.TCP ? ['TCP', f.l4.TCP] : f.l4.UDP ? ['UDP', f.l4.UDP] : null);
  const port = l4 ? `${l4[0]} ${f.IP ? f.IP.destination : ''}:${l4[1].destination_port}` : '';
  return [port, f.drop_reason_desc].filter(Boolean).join(' ');
}

function matches(f) {
  const d = new FormData(form);
  const verdict = d.get('verdict');
  const type = d.get('type');
  const protocol = d.get('protocol');
  const text = String(d.get('text') || '').trim().toLowerCase();
  if (verdict && f.verdict !== verdict) return false;
  if (type && flowType(f) !== type) return false;
  if (protocol && !protocols(f).includes(protocol)) return false;
  if (text) {
    const hay = [endpointName(f.source), endpointName(f.destination), ...(f.source.labels || []), ...(f.destination.labels || []), summary(f), f.verdict]
      .join(' ')
      .toLowerCase();
    if (!hay.includes(text)) return false;
  }
  return true;
}

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function row(f, fresh) {
  const tr = document.createElement('tr');
  tr.className = `verdict-${f.verdict}${fresh ? ' fresh' : ''}`;
  tr.dataset.uuid = f.uuid || '';
  tr.dataset.verdict = f.verdict;
  tr.dataset.src = String(f.source.identity);
  tr.dataset.dst = String(f.destination.identity);
  const t = new Date(f.time);
  tr.append(
    cell(Number.isNaN(t.getTime()) ? f.time : t.toLocaleTimeString(undefined, { hour12: false }) + `.${String(t.getMilliseconds()).padStart(3, '0')}`),
    cell(`${endpointName(f.source)} (${f.source.identity})`),
    cell(`${endpointName(f.destination)} (${f.destination.identity})`),
    cell(flowType(f)),
    cell(f.verdict, 'verdict'),
    cell(summary(f), 'summary'),
  );
  tr.title = JSON.stringify(f, null, 2);
  return tr;
}

function renderTable() {
  const shown = [];
  for (let i = flows.length - 1; i >= 0 && shown.length < 500; i--) if (matches(flows[i])) shown.push(row(flows[i], false));
  tbody.replaceChildren(...shown);
  $('#flow-count').textContent = `${shown.length} shown of ${flows.length}${lost ? `, ${lost} lost` : ''}`;
}

function layout() {
  const list = [...nodes.values()].sort((a, b) => a.identity - b.identity);
  const cx = 300, cy = 210, r = list.length > 1 ? 160 : 0;
  list.forEach((n, i) => {
    const a = (2 * Math.PI * i) / list.length - Math.PI / 2;
    n.x = cx + r * Math.cos(a);
    n.y = cy + r * Math.sin(a);
  });
}

function renderMap() {
  layout();
  const g = $('#nodes');
  g.replaceChildren(
    ...[...nodes.values()].map((n) => {
      const el = document.createElementNS(SVG_NS, 'g');
      el.setAttribute('class', 'node');
      el.setAttribute('data-identity', String(n.identity));
      el.setAttribute('transform', `translate(${n.x.toFixed(1)},${n.y.toFixed(1)})`);
      const c = document.createElementNS(SVG_NS, 'circle');
      c.setAttribute('r', '18');
      const name = document.createElementNS(SVG_NS, 'text');
      // Labels sit on the outer side of the ring so edges into the node do not cross them.
      name.setAttribute('y', n.y < 210 ? '-26' : '32');
      name.textContent = n.name;
      const id = document.createElementNS(SVG_NS, 'text');
      id.setAttribute('class', 'id');
      id.setAttribute('y', '4');
      id.textContent = String(n.identity);
      const title = document.createElementNS(SVG_NS, 'title');
      title.textContent = `${n.name} (identity ${n.identity})\n${n.labels.join('\n')}`;
      el.append(c, id, name, title);
      return el;
    }),
  );
  const e = $('#edges');
  e.replaceChildren(
    ...[...edges.values()].map((edge) => {
      const a = nodes.get(edge.src), b = nodes.get(edge.dst);
      const path = document.createElementNS(SVG_NS, 'path');
      path.setAttribute('class', `edge verdict-${edge.verdict}`);
      path.setAttribute('data-src', String(edge.src));
      path.setAttribute('data-dst', String(edge.dst));
      path.setAttribute('data-verdict', edge.verdict);
      path.setAttribute('marker-end', `url(#arrow-${edge.verdict})`);
      path.setAttribute('d', edgePath(a, b, VERDICT_ORDER.indexOf(edge.verdict)));
      const title = document.createElementNS(SVG_NS, 'title');
      title.textContent = `${a.name} → ${b.name}: ${edge.count} ${edge.verdict}`;
      path.append(title);
      return path;
    }),
  );
}

// Edges of different verdicts between the same pair bend apart so each stays visible.
function edgePath(a, b, slot) {
  if (a === b) {
    const s = 22 + slot * 8;
    return `M${a.x - 10},${a.y - 16} C${a.x - s * 2},${a.y - s * 3} ${a.x + s * 2},${a.y - s * 3} ${a.x + 10},${a.y - 16}`;
  }
  const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
  const ux = dx / len, uy = dy / len;
  const sx = a.x + ux * 20, sy = a.y + uy * 20, ex = b.x - ux * 22, ey = b.y - uy * 22;
  const bend = 18 + slot * 14;
  const mx = (sx + ex) / 2 - uy * bend, my = (sy + ey) / 2 + ux * bend;
  return `M${sx.toFixed(1)},${sy.toFixed(1)} Q${mx.toFixed(1)},${my.toFixed(1)} ${ex.toFixed(1)},${ey.toFixed(1)}`;
}

function addNode(e) {
  if (!nodes.has(e.identity)) nodes.set(e.identity, { identity: e.identity, name: endpointName(e), labels: e.labels || [] });
}

/** Takes one flow into the model; returns whether the map's shape changed. */
function ingest(f) {
  flows.push(f);
  if (flows.length > MAX_FLOWS) flows.splice(0, flows.length - MAX_FLOWS);
  const before = nodes.size + edges.size;
  addNode(f.source);
  addNode(f.destination);
  const key = `${f.source.identity}>${f.destination.identity}>${f.verdict}`;
  const edge = edges.get(key) || { src: f.source.identity, dst: f.destination.identity, verdict: f.verdict, count: 0, last: '' };
  edge.count++;
  edge.last = f.time;
  edges.set(key, edge);
  return nodes.size + edges.size !== before;
}

let mapDirty = false;
function scheduleMap() {
  if (mapDirty) return;
  mapDirty = true;
  requestAnimationFrame(() => {
    mapDirty = false;
    renderMap();
  });
}

function setStatus(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}

function follow() {
  // A reconnect replays the stored flows; uuids keep each flow in the model once.
  const es = new EventSource('/v1/flows/stream?last=500');
  es.addEventListener('open', () => setStatus('live', 'live'));
  es.addEventListener('error', () => setStatus('error', 'disconnected, retrying…'));
  es.addEventListener('flow', (ev) => {
    const f = JSON.parse(ev.data);
    if (f.uuid) {
      if (seen.has(f.uuid)) return;
      seen.add(f.uuid);
      if (seen.size > MAX_FLOWS * 2) seen.delete(seen.values().next().value);
    }
    if (ingest(f)) scheduleMap();
    else renderMapCounts();
    if (matches(f)) {
      tbody.prepend(row(f, true));
      while (tbody.children.length > 500) tbody.lastElementChild.remove();
    }
    $('#flow-count').textContent = `${tbody.children.length} shown of ${flows.length}${lost ? `, ${lost} lost` : ''}`;
  });
  es.addEventListener('lost', (ev) => {
    lost = JSON.parse(ev.data).num_events_lost;
    setStatus('live', `live · ${lost} flows lost (browser too slow)`);
  });
  return es;
}

function renderMapCounts() {
  for (const el of document.querySelectorAll('#edges path')) {
    const edge = edges.get(`${el.dataset.src}>${el.dataset.dst}>${el.dataset.verdict}`);
    const t = el.querySelector('title');
    if (edge && t) t.textContent = t.textContent.replace(/: \d+ /, `: ${edge.count} `);
  }
}

form.addEventListener('input', renderTable);
form.addEventListener('submit', (e) => e.preventDefault());

renderMap();
renderTable();
follow();
