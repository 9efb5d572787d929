"""The web page in a real headless browser: Playwright driving Debian's Chromium against `hoprag
serve`'s app on loopback, over an index of three real laws at two dates (the offline embedder).

What a person does on the page is what is tested: search and see the article, open it and see its
cited articles drawn, follow a hop path, start a build and watch it commit, be asked for the key
(and get no data) with a wrong one. Every request the page makes is recorded: none leaves the
origin, none carries the key in its URL.

Chromium: `/usr/bin/chromium` (Debian's `chromium` package; `.ci/run` installs it) or
HOPRAG_CHROMIUM. Without one the tests skip here and fail under CI.
"""

from __future__ import annotations

import json
import os
import shutil
from urllib.parse import urlsplit

import pytest

from indexer.index import Index
from indexer.service import create_app
from indexer.settings import Settings
from indexer.web.browser import chromium_path, launch

from .conftest import LAWS_2022, LAWS_2024, WALK_MECHANICS, requires_data, write_law
from .live import LiveServer

CHROMIUM = chromium_path()
playwright = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e .[test])")

if not CHROMIUM and os.environ.get("CI") == "true":
    pytestmark = [requires_data]

    def test_ci_has_a_browser():
        pytest.fail("CI must install Chromium (apt-get install chromium) for the browser tests")
else:
    pytestmark = [requires_data, pytest.mark.skipif(not CHROMIUM, reason="no Chromium (apt-get install chromium)")]

LAWS = ("N0030001", "N0030002", "J0070017")
OVERTIME = "雇主延長工作時間之工資如何計算"
KEY = "web-s3cret"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The three laws as of 2022 and 2024 (versions to diff), library roots with a new law to build."""
    base = tmp_path_factory.mktemp("web")
    old, new, roots, home = base / "2022", base / "2024", base / "roots", base / "home"
    for folder, source in ((old, LAWS_2022), (new, LAWS_2024)):
        folder.mkdir()
        for pcode in LAWS:
            shutil.copy(source / f"{pcode}.json", folder / f"{pcode}.json")
    lib = roots / "laws"
    shutil.copytree(new, lib)
    write_law(lib, "Z9990002", "網頁測試法", {"1": "本法為測試網頁而定。", "2": "違反第一條者，依第一條處理。"})
    with Index(home) as idx:
        idx.build(old, embedder="use-multilingual")
        idx.build(new)
        changed = [c["key"] for c in idx.diff("2022-01-07", "2024-10-11", law="N0030001")["changed"]]
        cited = {n["key"] for n in idx.neighbors("N0030001:24", direction="out", kinds=["citation"])}
    assert changed and cited
    return {"home": home, "roots": roots, "lib": lib, "changed": changed, "cited": cited}


@pytest.fixture(scope="module")
def live(env):
    # the page must draw a hop path, whatever the defaults tuned on STARD rank first
    settings = Settings(home=env["home"], **WALK_MECHANICS)
    with LiveServer(create_app(settings, library_roots=[env["roots"]])) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture
def page(browser, live):
    """A fresh tab that records every request it makes."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-TW")
    tab = context.new_page()
    tab.requests = []
    tab.on("request", lambda r: tab.requests.append(r))
    tab.set_default_timeout(60_000)
    yield tab
    origin = urlsplit(live.url).netloc
    assert tab.requests and all(urlsplit(r.url).netloc == origin for r in tab.requests), \
        [r.url for r in tab.requests if urlsplit(r.url).netloc != origin]
    context.close()


def _search(page, url: str, query: str, mode: str = "hybrid") -> None:
    page.goto(f"{url}/")
    page.fill("input[name=q]", query)
    page.select_option("select[name=mode]", mode)
    page.click("#search button[type=submit]")


def test_search_shows_the_overtime_article(page, live):
    _search(page, live.url, OVERTIME)
    row = page.locator('li.hit[data-key="N0030001:24"]')
    row.wait_for()
    assert row.locator("a.title").inner_text() == "勞動基準法 第24條"  # Traditional Chinese as stored
    assert "延長工作時間" in row.locator("p.text").inner_text()
    assert "q=" in page.url and "mode=hybrid" in page.url  # the search can be linked and reloaded
    # the page shows what the API answers, in its order
    keys = page.locator("li.hit").evaluate_all("rows => rows.map(r => r.dataset.key)")
    api = page.request.post(f"{live.url}/search", data={"query": OVERTIME, "k": 10, "mode": "hybrid"}).json()
    assert keys == [h["key"] for h in api["hits"]]


def test_a_passage_draws_its_cited_articles(page, live, env):
    _search(page, live.url, OVERTIME)
    page.click('li.hit[data-key="N0030001:24"] a.title')
    page.wait_for_url("**/ui/passages/N0030001%3A24")
    page.locator('#graph g.node[data-node="N0030001:24"]').wait_for()
    drawn = set(page.locator("#graph g.node").evaluate_all("ns => ns.map(n => n.dataset.node)"))
    assert env["cited"] <= drawn, env["cited"] - drawn
    assert page.locator("#title").inner_text().startswith("勞動基準法 第24條")
    # citation edges are drawn from the article to what it cites, coloured by kind
    cites = page.locator('#graph line.edge.citation[data-source="N0030001:24"]')
    assert {cites.nth(i).get_attribute("data-target") for i in range(cites.count())} == env["cited"]
    # its edge table and a click on a drawn node recentres the page on that article
    target = sorted(env["cited"])[0]
    page.locator(f'#graph g.node[data-node="{target}"]').dispatch_event("click")
    page.wait_for_url(f"**/ui/passages/{target.replace(':', '%3A')}*")
    page.locator(f'#graph g.node.hop-0[data-node="{target}"]').wait_for()


def test_a_hop_search_path_is_drawn(page, live):
    _search(page, live.url, OVERTIME, mode="hop")
    page.locator("li.hit").first.wait_for()
    reached = page.locator("li.hit:has(ol.path li)")
    assert reached.count() > 0
    steps = reached.first.locator("ol.path li").count()
    reached.first.locator("a.draw-path").click()
    page.wait_for_url("**/ui/passages/**path=**")
    page.locator("#graph g.node.on-path").first.wait_for()
    assert page.locator("#graph line.edge.on-path").count() >= steps
    assert page.locator("#graph g.node.on-path").count() >= steps + 1


def test_versions_show_a_readable_diff_and_a_date_picks_the_old_text(page, live, env):
    key = env["changed"][0]
    page.goto(f"{live.url}/ui/passages/{key}")
    page.locator(".version").first.wait_for()
    assert page.locator(".version").count() >= 2
    assert page.locator(".version del, .version ins").count() > 0
    old = page.request.get(f"{live.url}/passages/{key}?as_of=2023-01-01").json()
    page.fill("input[name=as_of]", "2023-01-01")
    page.click("#asof button")
    page.wait_for_url("**as_of=2023-01-01**")
    page.locator("#passage:not([hidden])").wait_for()
    now = page.request.get(f"{live.url}/passages/{key}").json()
    assert old["text"] != now["text"]
    assert page.locator("#text").inner_text().replace("\n", "") == old["text"].replace("\n", "")
    assert page.locator("#title .badge").inner_text().startswith(f"in force {old['valid_from']}")


def test_stats_show_the_index(page, live):
    page.goto(f"{live.url}/ui/stats")
    page.locator('.tile[data-stat="passages"] b').wait_for()
    stats = page.request.get(f"{live.url}/stats").json()
    assert page.locator('.tile[data-stat="passages"] b').inner_text() == f"{stats['passages']:,}"
    assert page.locator("#per-law rect").count() >= 3
    assert "use-multilingual" in page.locator("#about").inner_text()


def test_the_page_fits_a_phone(browser, live):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    tab = context.new_page()
    tab.goto(f"{live.url}/?q={OVERTIME}&mode=dense")
    tab.locator('li.hit[data-key="N0030001:24"]').wait_for(timeout=60_000)
    assert tab.evaluate("document.documentElement.scrollWidth") <= 390
    tab.goto(f"{live.url}/ui/passages/N0030001:24")
    tab.locator("#graph g.node").first.wait_for(timeout=60_000)
    assert tab.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


def test_a_wrong_key_gets_the_login_prompt_not_data(browser, env):
    with LiveServer(create_app(Settings(home=env["home"]), api_key=KEY)) as server:
        context = browser.new_context()
        tab = context.new_page()
        seen = []
        tab.on("request", lambda r: seen.append((r.url, r.headers.get("authorization"))))
        tab.goto(f"{server.url}/?q={OVERTIME}")
        tab.locator("#login:not([hidden])").wait_for(timeout=30_000)  # no key yet
        tab.fill("#login input[name=key]", "wrong")
        tab.click("#login button")
        tab.locator("#login:not([hidden]) .error").wait_for(timeout=30_000)
        assert "refused" in tab.locator("#login .error").inner_text()
        assert tab.locator("li.hit").count() == 0
        tab.fill("#login input[name=key]", KEY)
        tab.click("#login button")
        tab.locator('li.hit[data-key="N0030001:24"]').wait_for(timeout=60_000)
        assert tab.locator("#login").is_hidden()
        # the key travels only in the Authorization header of API calls, never in a URL
        assert all(KEY not in url for url, _ in seen)
        assert any(auth == f"Bearer {KEY}" for url, auth in seen if url.endswith("/search"))
        context.close()


def test_a_build_started_from_the_page_commits(page, live, env):
    page.goto(f"{live.url}/ui/builds")
    page.locator(f'select[name=library] option[value="{env["lib"]}"]').wait_for(state="attached")
    page.select_option("select[name=library]", str(env["lib"]))
    page.click("#build button[type=submit]")
    page.locator('#job[data-status="committed"]').wait_for(timeout=180_000)
    report = dict(zip(page.locator("#job dt").all_inner_texts(), page.locator("#job dd").all_inner_texts()))
    assert int(report["added"]) == 2 and int(report["generation"]) >= 3, report
    assert page.locator("#job progress").evaluate("p => p.value === p.max")
    assert page.locator("#jobs tbody tr").count() == 1
    job = json.loads(page.request.get(f"{live.url}/builds").text())["jobs"][0]
    assert job["status"] == "committed" and job["report"]["added"] == 2


def test_link_values_cannot_add_api_parameters_or_draw_made_up_steps(page, live, env):
    """?as_of=2024-09-30%26limit%3D1 added `limit=1` to the API's URL; ?path= drew any keys and
    text a link's maker chose. A date must be a date (encoded when sent); only real edges are drawn,
    with the index's own questions."""
    import json as _json
    from urllib.parse import quote

    cited = sorted(env["cited"])[0]
    fake = [{"from": "N0030001:24", "to": "EVIL:1", "kind": "citation", "question": "點此領獎"},
            {"from": "N0030001:24", "to": cited, "kind": "citation", "question": "made-up text"}]
    url = (f"{live.url}/ui/passages/N0030001:24?as_of={quote('2024-09-30&limit=1', safe='')}"
           f"&path={quote(_json.dumps(fake, ensure_ascii=False), safe='')}")
    page.goto(url)
    page.locator('#graph g.node[data-node="N0030001:24"]').wait_for()
    page.locator("#graph line.edge.on-path").first.wait_for()
    api_urls = [r.url for r in page.requests if "/passages/" in r.url and "/ui/" not in r.url]
    assert api_urls and not any("limit=" in u for u in api_urls), api_urls
    drawn = set(page.locator("#graph g.node").evaluate_all("ns => ns.map(n => n.dataset.node)"))
    assert "EVIL:1" not in drawn and cited in drawn
    assert page.locator("#graph g.node.on-path").count() == 2          # the real step only
    html = page.content()
    assert "點此領獎" not in html and "made-up text" not in html


def test_a_hop_path_shows_the_legal_role_of_each_citation(page, live):
    """勞基法 79 punishes breaches of 24: a path over that citation is drawn with its role written
    on the line, the index's role, not one a link claims."""
    import json as _json
    from urllib.parse import quote

    claimed = [{"from": "N0030001:24", "to": "N0030001:79", "kind": "citation", "role": "defines"}]
    page.goto(f"{live.url}/ui/passages/N0030001:79?path={quote(_json.dumps(claimed), safe='')}")
    label = page.locator("#graph text.edge-role")
    label.first.wait_for()
    assert label.evaluate_all("ts => ts.map(t => [t.dataset.role, t.textContent])") == [["punishes", "punishes"]]
    row = page.locator('#edges tbody tr[data-key="N0030001:24"]')
    assert "(punishes)" in row.inner_text()
