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

// rebind.example resolves to this machine, as a DNS-rebinding attacker's
// name would once rebound.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--host-resolver-rules=MAP rebind.example 127.0.0.1"],
});
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

  // The pages' own policy must not stop their own script.
  const blocked = [];
  page.on("console", (msg) => {
    if (msg.type() === "error" && /Content Security Policy/i.test(msg.text())) blocked.push(msg.text());
  });

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
  // The fleet at a glance counts what the table lists.
  for (const [phase, count] of Object.entries(expect.phases)) {
    const got = await page.locator(`.fleet [data-phase="${phase}"]`).getAttribute("data-count");
    check(Number(got) === count, `fleet picture: ${got} ${phase}, want ${count}`);
  }
  for (const [version, count] of Object.entries(expect.versions)) {
    const got = await page.locator(`.fleet [data-profile="hello"][data-version="${version}"]`).getAttribute("data-count");
    check(Number(got) === count, `fleet picture: hello ${version} on ${got}, want ${count}`);
  }
  await shot("clusters");

  // Profiles and inventory.
  await page.goto(base + "/profiles");
  for (const p of expect.profiles) {
    check((await page.locator(`section[data-profile="${p}"]`).count()) === 1, `profiles page: no ${p}`);
  }
  // The draft 1.1.0 with its impact (the clusters pin 1.0.0: none would
  // move) and a Publish button, which publishes it.
  check((await page.locator('tr[data-impact="1.1.0"]').count()) === 1, "profiles page: the draft shows no impact");
  await shot("profiles");
  await page.click('tr[data-impact="1.1.0"] button.publish');
  await page.waitForURL(base + "/profiles");
  check((await page.locator('tr[data-impact="1.1.0"]').count()) === 0, "profiles page: still a draft after Publish");
  await page.goto(base + "/inventory");
  for (const [pkg, count] of Object.entries(expect.inventory)) {
    const cell = page.locator(`tr[data-package="${pkg}"] a`);
    check((await cell.textContent()).trim() === `${count} clusters`, `inventory: ${pkg} not on ${count} clusters`);
  }
  await shot("inventory");

  // Another page of this machine tries to approve the plan: by a form
  // that posts itself, and by a fetch with the user's cookies that also
  // tries to read the cluster's page. Both are refused.
  const approveURL = `${base}/clusters/${expect.approve}/approve`;
  for (const by of ["form", "fetch"]) {
    // The browser itself may keep the answer from the other page (the
    // dashboard's Cross-Origin-Resource-Policy): the Go test checks what
    // the server answered each post.
    const answered = new Promise((resolve) => {
      page.on("response", (r) => r.url() === approveURL && resolve(`answered ${r.status()}`));
      page.on("requestfailed", (r) => r.url() === approveURL && resolve(`blocked: ${r.failure()?.errorText}`));
    });
    await page.goto(`${expect.attacker}/?by=${by}`);
    const outcome = await answered;
    check(!outcome.startsWith("answered") || outcome === "answered 403", `attacker's ${by} post: ${outcome}, want 403`);
    if (by === "fetch") {
      await page.waitForFunction(() => document.getElementById("out").textContent !== "running");
      const out = await page.locator("#out").textContent();
      check(out.includes("read refused"), `attacker read the dashboard: ${out}`);
    }
    page.removeAllListeners("response");
    page.removeAllListeners("requestfailed");
  }
  // DNS rebinding: the attacker's name now points here; the browser sends
  // it as Host, and the dashboard does not answer to it.
  const rebound = await page.goto(base.replace("127.0.0.1", "rebind.example") + `/clusters/${expect.approve}`);
  check(rebound.status() === 421, `rebound name answered ${rebound.status()}, want 421`);
  check(!(await rebound.text()).includes(expect.digest), "rebound name was shown the plan");

  // The pending plan, side by side; approve it and watch the page converge
  // by itself (server-sent events), without a reload.
  await page.goto(`${base}/clusters/${expect.approve}`);
  check((await page.locator("#plan").count()) === 1, "cluster page: no pending plan (after the attacks)");
  check((await page.locator(`input[name=digest][value="${expect.digest}"]`).count()) === 1, "cluster page: the plan changed during the attacks");
  // The stack picture: the layer to install is drawn as added and Pending,
  // in words as well as in colour, its logo loaded.
  const band = page.locator('.band[data-layer="hello-universe"]');
  check((await band.getAttribute("data-phase")) === "Pending", `band phase ${await band.getAttribute("data-phase")}, want Pending`);
  check((await band.getAttribute("data-change")) === "added", `band change ${await band.getAttribute("data-change")}, want added`);
  check((await band.locator(".band-phase").textContent()).trim() === "Pending", "band: phase not in words");
  check((await band.locator(".band-change").textContent()).trim() === "added", "band: change not in words");
  await band.locator("img").evaluate((img) => img.decode());
  check((await band.locator("img").evaluate((img) => img.naturalWidth)) > 0, "band: logo not loaded");
  const pendingColour = await band.evaluate((el) => getComputedStyle(el).backgroundColor);
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
  const ready = page.locator('.band[data-layer="hello-universe"]');
  check((await ready.getAttribute("data-phase")) === "Ready", `band after approval: ${await ready.getAttribute("data-phase")}`);
  check((await ready.getAttribute("data-change")) === null, "band after approval still shows a change");
  const readyColour = await ready.evaluate((el) => getComputedStyle(el).backgroundColor);
  check(readyColour !== pendingColour, `band colour stayed ${readyColour} from Pending to Ready`);
  await shot("cluster-converged");

  // A hostile pack: its README's script, handler and javascript: link do
  // nothing, its HTML "logo" is drawn as a placeholder, the page works.
  const dialogs = [];
  page.on("dialog", async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  const packPage = await page.goto(base + expect.hostile);
  check(packPage.status() === 200, `hostile pack page: ${packPage.status()}`);
  check((await page.locator(".readme em").textContent()) === "text", "hostile pack: README not rendered");
  check((await page.locator(".readme script, .readme img, .readme [onerror], .readme a[href^='javascript']").count()) === 0, "hostile pack: README keeps what runs");
  const logo = page.locator(".pack-title img");
  await logo.evaluate((img) => img.decode());
  check((await logo.evaluate((img) => img.naturalWidth)) > 0, "hostile pack: no logo drawn");
  const logoType = (await page.request.get(base + expect.hostile + "/logo")).headers()["content-type"];
  check(logoType === "image/svg+xml", `hostile pack logo served as ${logoType}, want the placeholder`);
  await shot("pack-hostile");
  await page.goto(base + "/packs/hello-universe/1.2.0");
  await shot("pack");
  check(dialogs.length === 0, `a pack's content ran: ${dialogs.join("; ")}`);
  check(blocked.length === 0, `the pages' own policy blocked: ${blocked.join("; ")}`);
  console.log(`checked ${expect.clusters.length} clusters, ${expect.profiles.length} profiles, approved ${expect.approve}`);
} finally {
  await browser.close();
}
