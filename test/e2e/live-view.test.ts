/**
 * End to end: the live view on the metrics listener. A real agent, a curl
 * the policy allows and one it denies, then the page's JSON, and the page
 * itself in headless Chromium (no npm dependency: the `chromium` binary,
 * --dump-dom for the rendered DOM and --screenshot for a PNG).
 *
 *   client (app=client) ──:80──> web (app=web)   allowed   FORWARDED
 *   intruder (app=other) ──:80──> web            denied    DROPPED (POLICY_DENIED)
 *
 *   chromium --headless ──> 127.0.0.1:<ephemeral>/  (polls /api/flows, /api/drops, /api/services)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentProcess, netnsWithPrefix, runPrefix, sh } from '../../src/testbed/agent-process.ts';
import { bg, waitFor } from './netns-tools.ts';
import type { DropCount, FlowRow, ServiceMap } from '../../src/agent/live-view-api.ts';

const WEB_POLICY = {
  apiVersion: 'cilium.io/v2',
  kind: 'CiliumNetworkPolicy',
  metadata: { name: 'web' },
  spec: { endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] },
};
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const chromiumMissing = spawnSync('chromium', ['--version'], { encoding: 'utf8' }).status !== 0;

function curlOk(ns: string, url: string): boolean {
  return sh(ns, 'curl', ['-s', '-o', '/dev/null', '--max-time', '2', url], { timeoutMs: 10000 }).status === 0;
}

/** GET http://<address><path>: status, content type and body. */
function httpGet(address: string, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(`http://${address}${path}`, { agent: false, timeout: 10000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on('error', reject);
  });
}

describe('live view: the page next to /metrics', { timeout: 180_000 }, () => {
  const p = runPrefix('tv');
  const ns = (n: string) => `${p}${n}`;
  let agent: AgentProcess | undefined;
  const children: ChildProcess[] = [];
  const tmp = mkdtempSync(join(tmpdir(), `${p}-live-view-`));
  let address = '';
  let web = '';

  /** Headless Chromium on the page with its own profile directory; the extra flags select the output. */
  const chromium = (...args: string[]) =>
    spawnSync('chromium', ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${join(tmp, 'profile')}`, '--virtual-time-budget=8000', ...args, `http://${address}/`], { encoding: 'utf8', timeout: 90_000, maxBuffer: 32 << 20 });

  before(async () => {
    agent = await AgentProcess.start(p, {
      node: { name: 'live-view', ipv4PodCIDR: '10.218.0.0/24', tapPrefix: p },
      endpoints: [
        { name: 'web', netns: ns('w'), labels: { app: 'web' } },
        { name: 'client', netns: ns('c'), labels: { app: 'client' } },
        { name: 'intruder', netns: ns('i'), labels: { app: 'other' } },
      ],
      policies: [WEB_POLICY],
      metrics: { address: '127.0.0.1:0' },
    });
    const st = await agent.api<{ metrics: { address: string | null; error?: string } }>('GET', '/v1/status');
    address = st.metrics.address ?? '';
    assert.ok(address !== '', `the metrics listener is up: ${JSON.stringify(st.metrics)}`);
    web = (await agent.api<{ name: string; ipv4: string }[]>('GET', '/v1/endpoint')).find((e) => e.name === 'web')!.ipv4;
    bg(children, ns('w'), process.execPath, ['-e', "require('http').createServer((q,r)=>r.end('ok\\n')).listen(80)"]);
    await waitFor('the web server', () => curlOk(ns('w'), 'http://127.0.0.1/'));
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await agent?.stopAndSweep();
    for (const n of netnsWithPrefix(p)) sh(null, 'ip', ['netns', 'del', n]);
    rmSync(tmp, { recursive: true, force: true });
  });

  test('the JSON the page polls: flows, drops by reason, the service map', async () => {
    await httpGet(address, '/api/flows'); // the first observer turns forwarded-frame tracing on
    assert.ok(curlOk(ns('c'), `http://${web}/`), 'client -> web is allowed');
    assert.ok(!curlOk(ns('i'), `http://${web}/`), 'intruder -> web is denied');
    await new Promise((r) => setTimeout(r, 500));
    const f = await httpGet(address, '/api/flows');
    assert.equal(f.status, 200, f.body);
    assert.match(f.type, /^application\/json/);
    const { rows, next } = JSON.parse(f.body) as { rows: FlowRow[]; next: number };
    assert.ok(rows.some((r) => r.verdict === 'FORWARDED' && r.src === 'default/client' && r.dst === 'default/web' && r.dstPort === 80), `client -> web FORWARDED: ${f.body.slice(0, 600)}`);
    assert.ok(rows.some((r) => r.verdict === 'DROPPED' && r.src === 'default/intruder' && r.info === 'POLICY_DENIED at to-container'), `intruder -> web DROPPED: ${f.body.slice(0, 600)}`);
    const again = JSON.parse((await httpGet(address, `/api/flows?since=${next}`)).body) as { rows: FlowRow[]; next: number };
    assert.ok(again.next >= next && again.rows.length < rows.length, `?since= returns only what is new: ${again.rows.length} of ${rows.length}`);
    const drops = JSON.parse((await httpGet(address, '/api/drops')).body) as { drops: DropCount[] };
    assert.ok(drops.drops.some((d) => /policy denied/i.test(d.reason) && d.count > 0), `the policy drop is counted: ${JSON.stringify(drops)}`);
    const map = JSON.parse((await httpGet(address, '/api/services')).body) as ServiceMap;
    assert.ok(map.endpoints.some((e) => e.name === 'default/web' && e.ips.includes(web)), `web is a map node: ${JSON.stringify(map)}`);
    const page = await httpGet(address, '/');
    assert.equal(page.status, 200, 'GET / serves the page');
    assert.match(page.type, /^text\/html/);
    assert.ok(!/<(script|link|img)[^>]+(src|href)=/i.test(page.body), 'the page loads nothing from elsewhere');
    assert.equal((await httpGet(address, '/nope')).status, 404, 'other paths stay 404');
    assert.ok((await httpGet(address, '/metrics')).body.includes('cilium_drop_count_total'), '/metrics is unchanged');
  });

  test('the page in headless Chromium shows the flow, and a screenshot renders', { skip: chromiumMissing ? 'chromium binary not found: apt-get install chromium' : false }, () => {
    const dom = chromium('--dump-dom');
    assert.equal(dom.status, 0, `chromium --dump-dom: ${dom.stderr.slice(-800)}`);
    const flowTable = /<tbody id="flows">([\s\S]*?)<\/tbody>/.exec(dom.stdout)?.[1] ?? '';
    assert.ok(/default\/web:80<\/td><td class="FORWARDED">FORWARDED<\/td>/.test(flowTable), `a FORWARDED flow to web in the table: ${flowTable.slice(0, 800) || dom.stdout.slice(0, 800)}`);
    assert.ok(flowTable.includes('POLICY_DENIED at to-container'), 'the denied flow shows its drop reason and the hook');
    assert.ok(/class="edge FORWARDED"/.test(dom.stdout) && /class="edge DROPPED"/.test(dom.stdout), 'the service map has a forwarded and a dropped edge');
    assert.ok(/<tbody id="drops">[\s\S]*?Policy denied/i.test(dom.stdout), 'drops by reason lists the policy drop');
    const png = join(tmp, 'live-view.png');
    const shot = chromium('--window-size=1280,900', `--screenshot=${png}`);
    assert.equal(shot.status, 0, `chromium --screenshot: ${shot.stderr.slice(-800)}`);
    const size = statSync(png, { throwIfNoEntry: false })?.size ?? 0;
    assert.ok(size > 10 * 1024, `the screenshot is non-trivial: ${size} bytes`);
    assert.ok(readFileSync(png).subarray(0, 8).equals(PNG_SIGNATURE), 'the screenshot is a PNG');
  });
});
