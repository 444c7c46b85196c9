/**
 * The live view: one self-contained HTML page (inline CSS and JS, nothing
 * fetched from elsewhere) served at `GET /` on the metrics listener. It
 * polls the JSON of live-view-api.ts once a second and shows:
 *   - flows as they happen, newest first, with a text filter (pod, IP, verdict…);
 *   - drops by reason (the counters behind cilium_drop_count_total);
 *   - a service map: endpoints and services as SVG nodes, observed flows as
 *     edges, green for FORWARDED and red for DROPPED.
 *
 * API: LIVE_VIEW_HTML
 *
 * The script avoids template literals so the page can live in one here.
 * Text from the agent goes into the DOM with textContent only.
 */

/** The page. */
export const LIVE_VIEW_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tapestry live view</title>
<style>
body{font:13px/1.35 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d232b}
header{background:#1d2b3a;color:#fff;padding:8px 14px;display:flex;gap:16px;align-items:baseline}
header h1{font-size:16px;margin:0}#status{opacity:.8}
main{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:12px;padding:12px}
section{background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:8px 10px;min-width:0}
h2{font-size:14px;margin:0 0 6px}
table{border-collapse:collapse;width:100%;font-family:ui-monospace,monospace;font-size:12px}
th,td{text-align:left;padding:2px 6px;border-bottom:1px solid #eef0f3;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:260px}
th{background:#f0f2f5;position:sticky;top:0}
#flows-wrap{max-height:760px;overflow:auto}
.FORWARDED{color:#17803d;font-weight:600}.DROPPED{color:#c62828;font-weight:600}
input{width:100%;box-sizing:border-box;padding:4px 6px;margin-bottom:6px}
svg{width:100%;height:420px;background:#fbfcfd;border:1px solid #eef0f3}
.legend span{margin-right:12px}
</style></head>
<body>
<header><h1>Tapestry live view</h1><span id="status">connecting…</span></header>
<main>
<section id="flows-section"><h2>Flows</h2>
<input id="filter" placeholder="filter: pod name, IP, verdict, reason" autocomplete="off">
<div id="flows-wrap"><table><thead><tr><th>time</th><th>source</th><th>destination</th><th>verdict</th><th>drop reason / summary</th></tr></thead>
<tbody id="flows"></tbody></table></div></section>
<div>
<section><h2>Service map</h2>
<div class="legend"><span style="color:#17803d">&#9632; forwarded</span><span style="color:#c62828">&#9632; dropped</span><span style="color:#5b6b7c">&#9679; endpoint</span><span style="color:#7b4fc0">&#9670; service</span></div>
<svg id="map" viewBox="0 0 600 420" xmlns="http://www.w3.org/2000/svg"></svg></section>
<section style="margin-top:12px"><h2>Drops by reason</h2>
<table><thead><tr><th>reason</th><th>packets</th><th>bytes</th></tr></thead><tbody id="drops"></tbody></table></section>
</div>
</main>
<script>
"use strict";
var MAX_ROWS = 1000, since = null, rows = [], nodes = {endpoints: [], services: []}, edges = {};
var $ = function (id) { return document.getElementById(id); };
function el(tag, text, cls) { var e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; }
function side(name, ip, port) { var h = name || (ip.indexOf(':') >= 0 && port ? '[' + ip + ']' : ip); return h + (port ? ':' + port : ''); }
function label(r) { return [r.time, r.src, r.dst, r.srcIp, r.dstIp, r.verdict, r.info, r.srcPort, r.dstPort].join(' ').toLowerCase(); }
function renderFlows() {
  var q = $('filter').value.trim().toLowerCase(), body = $('flows'), out = document.createDocumentFragment();
  for (var i = rows.length - 1; i >= 0; i--) {
    var r = rows[i];
    if (q && label(r).indexOf(q) < 0) continue;
    var tr = el('tr');
    tr.appendChild(el('td', r.time.slice(11, 23)));
    tr.appendChild(el('td', side(r.src, r.srcIp, r.srcPort)));
    tr.appendChild(el('td', side(r.dst, r.dstIp, r.dstPort)));
    tr.appendChild(el('td', r.verdict, r.verdict));
    tr.appendChild(el('td', r.info));
    out.appendChild(tr);
  }
  body.replaceChildren(out);
}
function renderDrops(drops) {
  var out = document.createDocumentFragment();
  if (drops.length === 0) { var tr = el('tr'); tr.appendChild(el('td', 'no drops')); out.appendChild(tr); }
  drops.forEach(function (d) { var tr = el('tr'); tr.appendChild(el('td', d.reason)); tr.appendChild(el('td', d.count)); tr.appendChild(el('td', d.bytes)); out.appendChild(tr); });
  $('drops').replaceChildren(out);
}
/* A map node key: the endpoint's name for its addresses, else the address itself. */
function nodeOf(ip, byIp) { return byIp[ip] || ip; }
function svg(tag, attrs) { var e = document.createElementNS('http://www.w3.org/2000/svg', tag); for (var k in attrs) e.setAttribute(k, attrs[k]); return e; }
function renderMap() {
  var byIp = {}, names = [], kind = {};
  nodes.endpoints.forEach(function (e) { names.push(e.name); kind[e.name] = 'ep'; e.ips.forEach(function (ip) { byIp[ip] = e.name; }); });
  nodes.services.forEach(function (s) { var n = 'svc ' + s.name; names.push(n); kind[n] = 'svc'; s.frontends.forEach(function (f) { byIp[f.replace(/:\\d+$/, '')] = n; }); });
  var list = [];
  Object.keys(edges).forEach(function (k) { var e = edges[k]; var a = nodeOf(e.src, byIp), b = nodeOf(e.dst, byIp); [a, b].forEach(function (n) { if (!(n in kind)) { kind[n] = 'ip'; names.push(n); } }); list.push({a: a, b: b, verdict: e.verdict, n: e.n}); });
  var W = 600, H = 420, cx = W / 2, cy = H / 2, R = Math.min(W, H) / 2 - 60, pos = {};
  names.forEach(function (n, i) { var t = 2 * Math.PI * i / Math.max(1, names.length) - Math.PI / 2; pos[n] = {x: cx + R * Math.cos(t), y: cy + R * Math.sin(t)}; });
  var g = document.createDocumentFragment();
  g.appendChild(svg('defs', {})).innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="22" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#888"/></marker>';
  nodes.services.forEach(function (s) { s.backends.forEach(function (ip) { var b = byIp[ip]; if (!b || !pos[b]) return; var p = pos['svc ' + s.name], q = pos[b]; g.appendChild(svg('line', {x1: p.x, y1: p.y, x2: q.x, y2: q.y, stroke: '#b9a6dc', 'stroke-dasharray': '4 3'})); }); });
  list.forEach(function (e) {
    var p = pos[e.a], q = pos[e.b]; if (!p || !q || e.a === e.b) return;
    var bend = e.verdict === 'DROPPED' ? 18 : -18, mx = (p.x + q.x) / 2 + bend * (q.y - p.y) / (Math.hypot(q.x - p.x, q.y - p.y) || 1), my = (p.y + q.y) / 2 - bend * (q.x - p.x) / (Math.hypot(q.x - p.x, q.y - p.y) || 1);
    var path = svg('path', {d: 'M' + p.x + ',' + p.y + ' Q' + mx + ',' + my + ' ' + q.x + ',' + q.y, fill: 'none', stroke: e.verdict === 'DROPPED' ? '#c62828' : '#17803d', 'stroke-width': Math.min(6, 1.5 + Math.log2(e.n)), 'marker-end': 'url(#arrow)', 'class': 'edge ' + e.verdict});
    path.appendChild(svg('title', {})).textContent = e.a + ' -> ' + e.b + ' ' + e.verdict + ' (' + e.n + ' flows)';
    g.appendChild(path);
  });
  names.forEach(function (n) {
    var p = pos[n], k = kind[n];
    var shape = k === 'svc' ? svg('rect', {x: p.x - 9, y: p.y - 9, width: 18, height: 18, transform: 'rotate(45 ' + p.x + ' ' + p.y + ')', fill: '#7b4fc0'}) : svg('circle', {cx: p.x, cy: p.y, r: 10, fill: k === 'ep' ? '#5b6b7c' : '#aab4bf'});
    g.appendChild(shape);
    var t = svg('text', {x: p.x, y: p.y + 24, 'text-anchor': 'middle', 'font-size': 12, fill: '#1d232b', 'class': 'node'}); t.textContent = n; g.appendChild(t);
  });
  $('map').replaceChildren(g);
}
function addRows(newRows) {
  newRows.forEach(function (r) {
    var k = r.srcIp + '>' + r.dstIp + '>' + (r.verdict === 'DROPPED' ? 'DROPPED' : 'FORWARDED');
    var e = edges[k] || (edges[k] = {src: r.srcIp, dst: r.dstIp, verdict: r.verdict === 'DROPPED' ? 'DROPPED' : 'FORWARDED', n: 0}); e.n++;
  });
  rows = rows.concat(newRows); if (rows.length > MAX_ROWS) rows = rows.slice(rows.length - MAX_ROWS);
}
function getJson(path) { return fetch(path, {cache: 'no-store'}).then(function (r) { if (!r.ok) throw new Error(path + ': ' + r.status); return r.json(); }); }
var busy = false;
function poll() {
  if (busy) return;
  busy = true;
  var f = getJson('/api/flows' + (since === null ? '' : '?since=' + since)).then(function (r) { since = r.next; addRows(r.rows); renderFlows(); return r; });
  var d = getJson('/api/drops').then(function (r) { renderDrops(r.drops); });
  var s = getJson('/api/services').then(function (r) { nodes = r; });
  Promise.all([f, d, s]).then(function (x) { renderMap(); $('status').textContent = rows.length + ' flows shown, ' + x[0].lost + ' lost, updated ' + new Date().toLocaleTimeString(); },
    function (e) { $('status').textContent = 'error: ' + e.message; }).then(function () { busy = false; });
}
$('filter').addEventListener('input', renderFlows);
poll(); setInterval(poll, 1000);
</script>
</body></html>
`;
