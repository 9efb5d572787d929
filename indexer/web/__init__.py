"""The web page of `hoprag serve`: search, a passage with its graph neighbourhood and history,
builds watched live, the index at a glance.

Public API:
    add_pages(app)      mounts the pages on a service app:
                            /                       search (dense, hybrid, questions, hop)
                            /ui/passages/{key}      a passage, its questions, its neighbourhood drawn
                                                    (?as_of=DATE, ?path=[steps] a hop path to draw)
                            /ui/builds              start a build, watch its progress
                            /ui/stats               counts, edges per law, degree histogram
                            /ui/static/...          the scripts and styles (d3 vendored: no CDN)
    is_page_path(path)  what the API key middleware lets through without a key

The pages are static shells: every datum comes from the JSON API, fetched by the page's script
with the API key the user typed (kept in the tab's sessionStorage, sent as a Bearer header, never in
a URL or a cookie). A shell holds nothing secret, so it is served without the key, and a wrong key
gets the login prompt from the API's 401, not data. The Content-Security-Policy allows this origin
only: the page makes no external request.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["add_pages", "is_page_path"]

STATIC = Path(__file__).parent / "static"

# inline styles: d3 sets element styles from script (allowed anyway); no inline <script> anywhere
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def is_page_path(path: str) -> bool:
    """A page shell or its static files: open without the key (they hold no data)."""
    return path == "/" or path.startswith("/ui/")


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / f"{name}.html", media_type="text/html; charset=utf-8", headers=_HEADERS)


def add_pages(app: FastAPI) -> None:
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")

    @app.get("/", include_in_schema=False)
    def search_page() -> FileResponse:
        return _page("search")

    @app.get("/ui/passages/{key:path}", include_in_schema=False)
    def passage_page(key: str) -> FileResponse:
        return _page("passage")  # the script reads the key from the path

    @app.get("/ui/builds", include_in_schema=False)
    def builds_page() -> FileResponse:
        return _page("builds")

    @app.get("/ui/stats", include_in_schema=False)
    def stats_page() -> FileResponse:
        return _page("stats")
