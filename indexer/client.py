"""A Python client for `hoprag serve`: the index's query and build methods over HTTP, with the names,
arguments and return types of `Index`, so that code written against an `Index` runs against a
service by changing one line.

Public API:
    Client(url, api_key=None, timeout=120.0)          blocking (httpx.Client); a context manager
    AsyncClient(url, api_key=None, timeout=120.0)     the same methods, awaited (httpx.AsyncClient)
        .search(query, k=10, mode="dense", filters=None, as_of=None) -> list[Hit]
        .query(query, k=10) -> list[Hit]                                   dense
        .hop_search(query, k=10, n_hop=2, mode="similarity", filters=None, as_of=None) -> HopHits
        .neighbors(ref, direction="out", kinds=None, as_of=None) -> list[dict]
        .neighbourhood(ref, hops=2, limit=60, as_of=None) -> dict
        .passage(ref, as_of=None) -> dict | None
        .history(key) -> list[dict]
        .diff(date_from, date_to, law=None) -> dict
        .stats() -> dict, .graph_summary() -> dict
        .upsert(passages) -> BuildReport, .delete(keys) -> BuildReport    dicts of {key, text, ...}
        .build(library, embedder=None, llm=None, as_of=None, timeout_s=None) -> BuildReport
                                        queues the build (the library is a path inside the service's
                                        library roots), waits for it, returns its report
        .close() (AsyncClient: .aclose())
    ServiceError(status, detail)       an answer no exception class of the index stands for
    BuildFailed(job)                   the build job failed: .job has the service's account

Errors come back as the classes the service mapped them from: its error body names the class
(QueryError, IndexBusy, HopLLMError, ...); 404 for a passage is KeyError as in `Index.neighbors`
(`passage` answers None, `history` [] as `Index` does); 422 (a request outside the API's limits) is
QueryError; 401 and 403 are PermissionError.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import quote

import httpx

from . import errors
from .build.report import BuildReport
from .retrieve.hits import Hit, HopHits

__all__ = ["Client", "AsyncClient", "ServiceError", "BuildFailed"]

_HIT_FIELDS = {f.name for f in fields(Hit)}
_REPORT_FIELDS = {f.name for f in fields(BuildReport)}
_POLL_S = 0.25


class ServiceError(Exception):
    """An answer of the service that no exception class of the index stands for."""

    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail
        super().__init__(f"HTTP {status}: {detail}")


class BuildFailed(Exception):
    """A build the service ran failed; `job` is its account (error, library, times)."""

    def __init__(self, job: dict):
        self.job = job
        super().__init__(job.get("error") or "the build failed")


@dataclass(frozen=True)
class _Call:
    """One request and how its answer becomes what the `Index` method returns."""

    method: str
    path: str
    parse: Callable[[Any], Any]
    json: dict | None = None
    params: dict | None = None
    missing: Callable[[], Any] | None = None  # what a 404 means, if not an error (passage → None)


def _date(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.date) else value


def _ref(ref: int | str) -> str:
    return quote(str(ref), safe="")


def _hit(d: dict) -> Hit:
    d = {k: v for k, v in d.items() if k in _HIT_FIELDS}
    d["chapters"] = tuple(d.get("chapters", ()))
    if d.get("path") is not None:
        d["path"] = tuple(d["path"])
    return Hit(**d)


def _hop_hits(d: dict) -> HopHits:
    return HopHits(
        (_hit(h) for h in d["hits"]),
        llm_calls=d.get("llm_calls", 0),
        llm_failures=d.get("llm_failures", 0),
        steps=d.get("steps", ()),
        deadline_hit=d.get("deadline_hit", False),
        generation=d.get("generation", 0),
    )


def _report(d: dict) -> BuildReport:
    return BuildReport(**{k: v for k, v in d.items() if k in _REPORT_FIELDS})


def _raise(response: httpx.Response) -> None:
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    detail = detail if isinstance(detail, str) else response.text[:500]
    named = getattr(errors, str(body.get("error", "")), None) if isinstance(body, dict) else None
    if isinstance(named, type) and named in errors.HTTP_STATUS:
        raise _make(named, detail)
    if response.status_code == 404:
        raise KeyError(detail)
    if response.status_code == 422:
        raise errors.QueryError(detail)
    if response.status_code in (401, 403):
        raise PermissionError(detail)
    raise ServiceError(response.status_code, detail)


def _make(cls: type[Exception], detail: str) -> Exception:
    if cls is errors.LibraryError:  # (path, reason): the detail already reads "path: reason"
        path, _, reason = detail.partition(": ")
        return errors.LibraryError(path, reason)
    return cls(detail)


class _Calls:
    """The `Index` methods as requests; `_do` sends one (blocking, or as a coroutine)."""

    def _do(self, call: _Call) -> Any:
        raise NotImplementedError

    def search(
        self, query: str, k: int = 10, mode: str = "dense", filters: dict | None = None, as_of: Any = None
    ) -> list[Hit]:
        body = {"query": query, "k": k, "mode": mode, "filters": filters, "as_of": _date(as_of)}
        return self._do(_Call("POST", "/search", lambda d: [_hit(h) for h in d["hits"]], json=body))

    def query(self, query: str, k: int = 10) -> list[Hit]:
        return self.search(query, k=k, mode="dense")

    def hop_search(
        self,
        query: str,
        k: int = 10,
        n_hop: int = 2,
        mode: str = "similarity",
        filters: dict | None = None,
        as_of: Any = None,
    ) -> HopHits:
        body = {"query": query, "k": k, "n_hop": n_hop, "mode": mode, "filters": filters, "as_of": _date(as_of)}
        return self._do(_Call("POST", "/hop-search", _hop_hits, json=body))

    def upsert(self, passages: Iterable[dict]) -> BuildReport:
        body = {"passages": [dict(p) for p in passages]}
        return self._do(_Call("POST", "/passages:upsert", _report, json=body))

    def delete(self, keys: Iterable[str]) -> BuildReport:
        body = {"keys": [keys] if isinstance(keys, str) else list(keys)}
        return self._do(_Call("POST", "/passages:delete", _report, json=body))

    def neighbors(
        self, ref: int | str, direction: str = "out", kinds: Iterable[str] | None = None, as_of: Any = None
    ) -> list[dict]:
        params = {"direction": direction, "kinds": ",".join(kinds) if kinds else None, "as_of": _date(as_of)}
        return self._do(_Call("GET", f"/passages/{_ref(ref)}/neighbors", lambda d: d["neighbors"], params=params))

    def neighbourhood(self, ref: int | str, hops: int = 2, limit: int = 60, as_of: Any = None) -> dict:
        params = {"hops": hops, "limit": limit, "as_of": _date(as_of)}
        return self._do(_Call("GET", f"/passages/{_ref(ref)}/graph", lambda d: d, params=params))

    def passage(self, ref: int | str, as_of: Any = None) -> dict | None:
        call = _Call("GET", f"/passages/{_ref(ref)}", lambda d: d, params={"as_of": _date(as_of)}, missing=lambda: None)
        return self._do(call)

    def history(self, key: str) -> list[dict]:
        return self._do(_Call("GET", f"/passages/{_ref(key)}/history", lambda d: d["versions"], missing=list))

    def diff(self, date_from: Any, date_to: Any, law: str | None = None) -> dict:
        params = {"from": _date(date_from), "to": _date(date_to), "law": law}
        return self._do(_Call("GET", "/diff", lambda d: d, params=params))

    def stats(self) -> dict:
        return self._do(_Call("GET", "/stats", lambda d: d))

    def graph_summary(self) -> dict:
        return self._do(_Call("GET", "/stats/graph", lambda d: d))

    def _submit(self, library: str, embedder: str | None, llm: str | None, as_of: Any) -> _Call:
        body = {"library": str(library), "embedder": embedder, "llm": llm, "as_of": _date(as_of)}
        return _Call("POST", "/builds", lambda d: d, json={k: v for k, v in body.items() if v is not None})

    @staticmethod
    def _job(job_id: str) -> _Call:
        return _Call("GET", f"/builds/{_ref(job_id)}", lambda d: d)


class _Wait:
    """A build job watched until it ends, within timeout_s (None: no limit)."""

    def __init__(self, timeout_s: float | None):
        self.timeout_s = timeout_s
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s

    def report(self, job: dict) -> BuildReport | None:
        """The report of a committed job, None while it runs; BuildFailed if it failed."""
        if job["status"] == "failed":
            raise BuildFailed(job)
        if job["status"] == "committed":
            return _report(job.get("report") or {})
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TimeoutError(f"build {job['id']} still {job['status']} after {self.timeout_s} s")
        return None


def _request(call: _Call) -> dict[str, Any]:
    params = {k: v for k, v in (call.params or {}).items() if v is not None} or None
    json = {k: v for k, v in call.json.items() if v is not None} if call.json is not None else None
    return {"method": call.method, "url": call.path, "params": params, "json": json}


def _answer(call: _Call, response: httpx.Response) -> Any:
    if response.status_code == 404 and call.missing is not None:
        return call.missing()
    if response.status_code >= 400:
        _raise(response)
    return call.parse(response.json())


def _headers(api_key: str | None) -> dict:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class Client(_Calls):
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 120.0):
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=_headers(api_key), timeout=timeout)

    def _do(self, call: _Call) -> Any:
        return _answer(call, self._http.request(**_request(call)))

    def build(
        self,
        library: str,
        embedder: str | None = None,
        llm: str | None = None,
        as_of: Any = None,
        timeout_s: float | None = None,
    ) -> BuildReport:
        job = self._do(self._submit(library, embedder, llm, as_of))
        wait = _Wait(timeout_s)
        while (report := wait.report(job)) is None:
            time.sleep(_POLL_S)
            job = self._do(self._job(job["id"]))
        return report

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Calls):
    """Every method of `Client`, to be awaited."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 120.0):
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), headers=_headers(api_key), timeout=timeout)

    async def _do(self, call: _Call) -> Any:
        return _answer(call, await self._http.request(**_request(call)))

    async def build(
        self,
        library: str,
        embedder: str | None = None,
        llm: str | None = None,
        as_of: Any = None,
        timeout_s: float | None = None,
    ) -> BuildReport:
        job = await self._do(self._submit(library, embedder, llm, as_of))
        wait = _Wait(timeout_s)
        while (report := wait.report(job)) is None:
            await asyncio.sleep(_POLL_S)
            job = await self._do(self._job(job["id"]))
        return report

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
