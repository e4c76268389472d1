"""Load the status page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright)
and check it as a person would: a row per node, and the paused standby's lag figure changing
while its link is paused. Usage: status_page.py URL NODES(comma-separated) PAUSED_NODE SCREENSHOT
Prints what it saw as JSON; exits 1 when a check fails."""
import json
import sys
import time

from playwright.sync_api import sync_playwright

url, nodes, paused, shot = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4]
flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
seen = {"rows": [], "lag": []}
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
    page = browser.new_page(viewport={"width": 1500, "height": 420})
    page.goto(url)
    for node in nodes:
        page.wait_for_selector(f"#node-{node}", timeout=20000)
    seen["rows"] = page.eval_on_selector_all("#rows tr", "rs => rs.map(r => r.id)")
    # The lag figure of the paused standby, read from the page once a second.
    for _ in range(6):
        seen["lag"].append(page.inner_text(f"#node-{paused} td.lag-seconds"))
        time.sleep(1)
    # The status once the lag has grown for 6 s more (read earlier it may sit at the alert).
    seen["status"] = page.inner_text("#summary")
    seen["sparklines"] = page.eval_on_selector_all("#rows svg path", "ps => ps.length")
    page.screenshot(path=shot, full_page=True)
    browser.close()
print(json.dumps(seen))
ok = all(f"node-{n}" in seen["rows"] for n in nodes) and len(set(seen["lag"])) >= 3
sys.exit(0 if ok else 1)
