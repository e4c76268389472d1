"""Open a run's report.html in headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright) as a reader would, from the file, and check it: every chart of report.md is there
and drawn (an <img> that loaded, with a size), no console error, no request to anything but the
page itself (data: URLs are not requests), the sections of report.md present. Takes a full-page
screenshot and prints what it saw as JSON; exits 1 when a check fails.
Usage: report_html.py REPORT_HTML EXPECTED_CHARTS(comma-separated alt texts) SCREENSHOT"""
import json
import pathlib
import sys

from playwright.sync_api import sync_playwright

path, expected, shot = pathlib.Path(sys.argv[1]).resolve(), sys.argv[2].split(","), sys.argv[3]
flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
seen = {"console_errors": [], "requests": [], "failed": []}
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: m.type == "error" and seen["console_errors"].append(m.text))
    page.on("pageerror", lambda e: seen["console_errors"].append(str(e)))
    page.on("request", lambda r: r.url.startswith("data:") or seen["requests"].append(r.url))
    page.on("requestfailed", lambda r: seen["failed"].append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    seen["images"] = page.eval_on_selector_all(
        "img",
        "is => is.map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth,"
        " inline: i.src.startsWith('data:image/')}))")
    seen["headings"] = page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
    seen["title"] = page.title()
    page.screenshot(path=shot, full_page=True)
    browser.close()
print(json.dumps(seen))
drawn = {i["alt"] for i in seen["images"] if i["complete"] and i["width"] > 0 and i["inline"]}
ok = (all(e in drawn for e in expected)
      and not seen["console_errors"]
      and seen["requests"] == [path.as_uri()]
      and not seen["failed"])
sys.exit(0 if ok else 1)
