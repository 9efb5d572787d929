"""The routes about the index as a whole, and the API's own documentation page.

Public API:
    router(index) -> APIRouter
        GET /stats            -> Index.stats()
        GET /stats/graph      -> Index.graph_summary()
        GET /healthz          -> {status, generation}   (open without the API key: middleware.OPEN_PATHS)
        GET /docs             Swagger UI from the vendored files of indexer/web (not in the schema)
"""

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from ..index import Index

__all__ = ["router"]


def router(index: Index) -> APIRouter:
    api = APIRouter()

    @api.get("/stats", tags=["index"])
    def stats() -> dict:
        """Counts, embedder, generation, snapshot and the last build report."""
        return index.stats()

    @api.get("/stats/graph", tags=["index"])
    def graph_stats() -> dict:
        """Passages and edges per law by kind, a histogram of passage degrees, the newest builds."""
        return index.graph_summary()

    @api.get("/healthz", tags=["index"])
    def healthz() -> dict:
        """Liveness and the committed generation; open without an API key."""
        return {"status": "ok", "generation": index.generation}

    # the default page loads Swagger UI from a CDN, unpinned: this one from the vendored copy
    @api.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        vendor = "/ui/static/vendor"
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="hoprag-index API",
            swagger_js_url=f"{vendor}/swagger-ui-bundle.js",
            swagger_css_url=f"{vendor}/swagger-ui.css",
            swagger_favicon_url="data:,",
        )

    return api
