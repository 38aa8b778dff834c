// The web UI in Debian's Chromium: the page loads, draws the service map from the
// stored flows, and then a request denied by the real Envoy AFTER the page loaded
// shows up live (server-sent events) as a new red edge and a new table row.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { kafkaAuditToFlow } from '../../observe/from-kafka-audit.js';
import { ID_GATEWAY, ID_OTHER, ID_WEB } from '../support/proxy-cases.js';
import { ENDPOINTS_BY_ID, GW_IP, OTHER_IP, startObserveRig, waitUntil, type ObserveRig } from '../support/observe-rig.js';
import { kafkaAudit } from '../support/observe-fixtures.js';
import { repoRoot } from '../support/paths.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(repoRoot, 'test-artifacts');
const UI_TIMEOUT_MS = 20_000;

describe('observe: web UI in Chromium', function () {
  this.timeout(90_000);
  let rig: ObserveRig | undefined;
  let ctx: BrowserContext | undefined;
  let page: Page;
  let profile = '';

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`    skipped: ${CHROMIUM} missing (Debian package chromium; run scripts/setup.sh)`);
      this.skip();
    }
    rig = await startObserveRig();
    if (rig.envoySkipReason) console.log(`    no real Envoy (${rig.envoySkipReason}): flows are fed through the Kafka converter instead`);
    profile = mkdtempSync(join(tmpdir(), 'l7m-chromium-'));
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(UI_TIMEOUT_MS);
  });
  after(async () => {
    await ctx?.close();
    await rig?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('shows the service map, then a new denied flow live as an edge and a row', async () => {
    const r = rig!;
    // Before the page opens: an allowed request (gateway → web-server).
    const src = ID_OTHER;
    const dst = ID_WEB;
    if (!r.envoySkipReason) {
      assert.equal((await r.request(GW_IP, 'GET', '/api/v1/users')).status, 200);
      await waitUntil('the allowed flow in the store', () => r.store.stats().added >= 1 || undefined);
    } else {
      r.store.add(kafkaAuditToFlow(kafkaAudit({ identity: ID_GATEWAY, verdict: 'allow', rule: 0, time: new Date().toISOString() }), { resolveIdentity: (id) => ENDPOINTS_BY_ID[id], destination: ENDPOINTS_BY_ID[ID_WEB]! }));
    }

    await page.goto(`${r.baseUrl}/ui`);
    await page.waitForSelector('#status[data-state="live"]');
    await page.waitForSelector(`#service-map g.node[data-identity="${ID_GATEWAY}"]`);
    await page.waitForSelector(`#service-map g.node[data-identity="${ID_WEB}"]`);
    await page.waitForSelector(`#service-map path.edge[data-src="${ID_GATEWAY}"][data-dst="${ID_WEB}"][data-verdict="FORWARDED"]`);
    const deniedEdge = `#service-map path.edge[data-src="${src}"][data-dst="${dst}"][data-verdict="DROPPED"]`;
    assert.equal(await page.locator(deniedEdge).count(), 0, 'no denied edge before the denied request');
    const rowsBefore = await page.locator('#flows tbody tr').count();

    // After load: a request the policy denies (other → web-server).
    if (!r.envoySkipReason) {
      assert.equal((await r.request(OTHER_IP, 'GET', '/api/v1/ui-check')).status, 403);
    } else {
      r.store.add(kafkaAuditToFlow(kafkaAudit({ identity: ID_OTHER, time: new Date().toISOString() }), { resolveIdentity: (id) => ENDPOINTS_BY_ID[id], destination: ENDPOINTS_BY_ID[ID_WEB]! }));
    }
    await page.waitForSelector(deniedEdge);
    const row = page.locator(`#flows tbody tr[data-verdict="DROPPED"][data-src="${src}"][data-dst="${dst}"]`);
    await row.first().waitFor();
    assert.equal(await row.count(), 1);
    const text = await row.first().innerText();
    assert.match(text, r.envoySkipReason ? /Kafka produce/ : /GET http:\/\/[^ ]+\/api\/v1\/ui-check/);
    assert.match(text, /DROPPED/);
    assert.equal(await page.locator('#flows tbody tr').count(), rowsBefore + 1);
    // The edge's colour comes from its verdict class.
    const stroke = await page.locator(deniedEdge).evaluate((el) => getComputedStyle(el).stroke);
    assert.equal(stroke, 'rgb(214, 69, 69)');

    // The table filter narrows to the denied flow.
    await page.selectOption('#filters select[name="verdict"]', 'DROPPED');
    await page.waitForFunction(() => document.querySelectorAll('#flows tbody tr').length === 1);
    assert.match(await page.locator('#flows tbody tr').first().innerText(), /DROPPED/);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'observe-ui.png'), fullPage: true });
    assert.ok(existsSync(join(ARTIFACTS, 'observe-ui.png')));
  });
});
