// Opens the dashboard of a running management plane in chromium, checks
// each page against the live state the Go test passes in EXPECT, approves
// a pending plan with a click and waits until the page shows the cluster
// converged. Screenshots of each page go to SCREENSHOTS.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const base = process.env.DASHBOARD_URL;
const shots = process.env.SCREENSHOTS;
const expect = JSON.parse(process.env.EXPECT);
mkdirSync(shots, { recursive: true });

function check(ok, what) {
  if (!ok) throw new Error(what);
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  // Screenshots are for people to look at, not part of what is checked: a
  // browser that cannot capture one (it happens under load) is noted.
  const shot = async (name) => {
    try {
      await page.screenshot({ path: join(shots, name + ".png"), fullPage: true });
    } catch (err) {
      console.warn(`screenshot ${name} not taken: ${err.message.split("\n")[0]}`);
    }
  };

  // Clusters: one row per cluster, with its phase and badges.
  await page.goto(base + "/");
  for (const c of expect.clusters) {
    const row = page.locator(`tr[data-cluster="${c.key}"]`);
    check((await row.count()) === 1, `clusters page: no row for ${c.key}`);
    const phase = (await row.locator(".badge").first().textContent()).trim();
    check(phase === c.phase, `clusters page: ${c.key} phase ${phase}, want ${c.phase}`);
    const updates = (await row.getByText("updates available").count()) > 0;
    check(updates === c.updates, `clusters page: ${c.key} updates badge ${updates}, want ${c.updates}`);
  }
  check((await page.locator("tr[data-cluster]").count()) === expect.clusters.length, "clusters page: extra rows");
  await shot("clusters");

  // Profiles and inventory.
  await page.goto(base + "/profiles");
  for (const p of expect.profiles) {
    check((await page.locator(`section[data-profile="${p}"]`).count()) === 1, `profiles page: no ${p}`);
  }
  await shot("profiles");
  await page.goto(base + "/inventory");
  for (const [pkg, count] of Object.entries(expect.inventory)) {
    const cell = page.locator(`tr[data-package="${pkg}"] a`);
    check((await cell.textContent()).trim() === `${count} clusters`, `inventory: ${pkg} not on ${count} clusters`);
  }
  await shot("inventory");

  // The pending plan, side by side; approve it and watch the page converge
  // by itself (server-sent events), without a reload.
  await page.goto(`${base}/clusters/${expect.approve}`);
  check((await page.locator("#plan").count()) === 1, "cluster page: no pending plan");
  await shot("cluster-pending");
  // The page that comes back after approving must converge even when the
  // cluster does before its live stream opens: its /events request is held
  // until the server's own page shows the cluster converged.
  const clusterURL = `${base}/clusters/${expect.approve}`;
  const converged = (async () => {
    for (const deadline = Date.now() + 120000; Date.now() < deadline; ) {
      const body = await (await page.request.get(clusterURL)).text();
      const layers = body.match(/<tr data-layer=.*?<\/tr>/g) || [];
      if (!body.includes('id="plan"') && layers.length > 0 && layers.every((l) => l.includes('class="badge Ready"'))) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`${clusterURL} did not converge within 2 minutes of approving`);
  })();
  await page.route("**/events*", async (route) => {
    await converged;
    await route.continue();
  });
  await page.click("#approve"); // the form posts, and the page comes back
  await page.locator("#plan").waitFor({ state: "detached", timeout: 120000 });
  await page.locator('tr[data-layer] .badge.Ready').first().waitFor({ timeout: 120000 });
  const phases = await page.locator("tr[data-layer] .badge").allTextContents();
  check(phases.length > 0 && phases.every((p) => p.trim() === "Ready"), `after approval, layers ${phases}`);
  await shot("cluster-converged");
  console.log(`checked ${expect.clusters.length} clusters, ${expect.profiles.length} profiles, approved ${expect.approve}`);
} finally {
  await browser.close();
}
