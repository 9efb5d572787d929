"""README's screenshots of the web page, taken in headless Chromium from the real service.

Indexes the bundled laws of 2022 with the offline embedder (or reuses --home), serves it on
loopback with the 2024 laws' folder as a library root, and saves docs/img/{search,passage,builds,
stats}.png: the 2024 build started from the page and committed, a hybrid search, a hop search's
path drawn on its passage's neighbourhood, and the stats page.

    python scripts/screenshots.py [--home .hoprag] [--laws ../shared/data/laws/2024-10-11]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUERY = "雇主延長工作時間之工資如何計算"


def serve(app):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def main(argv: list[str] | None = None) -> None:
    from playwright.sync_api import sync_playwright

    from indexer.index import Index
    from indexer.service import create_app
    from indexer.settings import Settings
    from indexer.web.browser import launch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--laws", type=Path, default=ROOT.parent / "shared" / "data" / "laws" / "2024-10-11")
    ap.add_argument("--laws-before", type=Path, default=ROOT.parent / "shared" / "data" / "laws" / "2022-01-07",
                    help="indexed first; the page then builds --laws (the amendment)")
    ap.add_argument("--home", type=Path, help="an index to reuse (default: a fresh one)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hoprag-shots-") as tmp:
        roots = Path(tmp) / "roots"
        shutil.copytree(args.laws, roots / "laws-2024")
        home = args.home or Path(tmp) / "home"
        if not (home / "index.db").exists():  # the laws of 2022: the page builds the 2024 amendment
            with Index(home) as idx:
                idx.build(args.laws_before, embedder="use-multilingual")
        server, url = serve(create_app(Settings(home=home), library_roots=[roots]))
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-TW")
            page.set_default_timeout(120_000)

            page.goto(f"{url}/ui/builds")
            page.locator("select[name=library] option").first.wait_for(state="attached")
            page.click("#build button[type=submit]")
            page.locator('#job[data-status="committed"]').wait_for()
            page.screenshot(path=str(args.out / "builds.png"), full_page=True)

            page.goto(f"{url}/?q={QUERY}&mode=hybrid&k=5")
            page.locator('li.hit[data-key="N0030001:24"]').wait_for()
            page.screenshot(path=str(args.out / "search.png"), full_page=True)

            page.goto(f"{url}/?q={QUERY}&mode=hop&k=10")
            page.locator("li.hit a.draw-path").first.click()
            page.locator("#graph g.node.on-path").first.wait_for()
            page.wait_for_timeout(2500)  # let the force layout settle
            page.screenshot(path=str(args.out / "passage.png"), full_page=False)

            page.goto(f"{url}/ui/stats")
            page.locator("#per-law svg").wait_for()
            page.screenshot(path=str(args.out / "stats.png"), full_page=False)
            browser.close()
        server.should_exit = True
    for name in ("search", "passage", "builds", "stats"):
        print(args.out / f"{name}.png")


if __name__ == "__main__":
    main()
