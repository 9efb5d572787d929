"""Milvus as the vector engine: one collection per vector set and embedder, rows versioned by
generation, the same search API as the FAISS `VectorIndex`.

Why versioned rows, not a collection per generation: a build writes only what changed. A new
vector is a row with gen_from = the new generation; a vector that leaves keeps its row and gets
gen_to = the new generation (a partial update, no vector sent). A reader of generation G filters
`gen_from <= G and gen_to > G`, so the build is invisible until the database commits G+1 — the
database's commit is the one switch, for every process and host that reads the index. Copying a
collection per generation would cost a full insert of every vector on every build (6M questions at
1M passages); here a build costs what it changes. Rows no kept generation can see are deleted
after the commit (`vacuum`); rows of a build that never committed are undone by the next one
(`discard_after`).

Primary key: vector id << 20 | gen_from, so a re-run of a crashed build's generation overwrites
(upsert) instead of duplicating. Consistency is Strong on every call: a reader must see the rows
of the generation the database just named.

Public API:
    MilvusStore(uri, prefix="hoprag", token=None, index="FLAT", nlist=1024, nprobe=32)
                                                  uri: a Milvus Lite file or http://host:19530
        .index(name, dim, generation, create=False, ts=0) -> MilvusVectorIndex   the set as of a generation
        .last_write_ts() -> int                   this process's last write: what readers of its build wait for
        .discard_after(name, dim, generation)     undo rows of generations after it (a crashed build)
        .vacuum(name, dim, keep_from)             delete rows invisible to generations >= keep_from
        .reset(name, dim)                         drop and recreate (a damaged collection, rebuilt)
        .exists(name, dim) -> bool, .close()
        .query(collection, expr, fields, ts=0) -> list[dict]   rows matching a Milvus expression
    MilvusVectorIndex                             VectorIndex's API over one generation:
        .ntotal, .dim, .ids(), .vectors(), .add(ids, vectors, laws=None), .remove(ids),
        .search(queries, k, laws=None) -> (scores, ids)   laws: filter in Milvus
        .clone(generation) -> the writable view of the next generation (same rows, no copy)
        .holds(sorted_ids) -> bool                 the row count the snapshot's map expects
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence

import numpy as np

from .errors import VectorIndexError
from .vectors import check_batch, check_vectors

__all__ = ["MilvusStore", "MilvusVectorIndex", "LIVE"]

INDEX_TYPES = ("FLAT", "IVF_FLAT")
LIVE = 2**62  # gen_to of a row no generation has retired
_GEN_BITS = 20  # generations per vector id before the primary key would wrap: 1M builds
_BATCH = 2000  # rows per insert/upsert call (gRPC messages stay well under 64 MiB at 1024-d)
_QUERY_PAGE = 16384  # Milvus' largest query window
_STRONG = {"consistency_level": "Strong"}
# pymilvus (>= 2.6.9) pings its channel every 10 s, calls or none. A C++ gRPC server with default
# settings -- milvus-lite's, which pymilvus also starts for a .db file -- takes one ping per 5
# minutes without data and answers the third early one with GOAWAY "too_many_pings", failing the
# call that meets it (a CI run lost a test to it). Pings no more often than that policy allows,
# and none on an idle channel; a dead server still shows on the next call.
GRPC_OPTIONS = {"grpc.keepalive_time_ms": 360_000, "grpc.keepalive_permit_without_calls": False}


_SESSION = {"consistency_level": "Session"}


def _consistency(ts: int) -> dict:
    """Strong makes a real Milvus wait for its next time tick (~400 ms on a 2.3 standalone); a
    reader that knows the build's last write timestamp asks for exactly that much instead, and a
    build reads its own writes (Session). ts: > 0 that timestamp, 0 Strong, -1 Session."""
    if ts > 0:
        return {"consistency_level": "Customized", "guarantee_timestamp": int(ts)}
    return _SESSION if ts < 0 else _STRONG


class _NoFallbackNotice(logging.Filter):
    """Milvus Lite hands out no snapshot timestamp for query iterators; pymilvus then uses the
    client's clock, which under Strong consistency is the same guarantee. Said once per page: quiet."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "mvccTs" not in record.getMessage()


logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_NoFallbackNotice())
log = logging.getLogger(__name__)


def _name_part(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", text)


class MilvusStore:
    def __init__(
        self,
        uri: str,
        prefix: str = "hoprag",
        token: str | None = None,
        index: str = "FLAT",
        nlist: int = 1024,
        nprobe: int = 32,
    ):
        from pymilvus import MilvusClient  # imported on first use, like FAISS

        if index not in INDEX_TYPES:
            raise VectorIndexError(f"unknown Milvus index {index!r}: {', '.join(INDEX_TYPES)}")
        self.uri, self.prefix = uri, _name_part(prefix)
        self.index_type, self.nlist, self.nprobe = index, int(nlist), int(nprobe)
        try:
            self.client = MilvusClient(uri=uri, token=token or "", grpc_options=GRPC_OPTIONS)
        except Exception as exc:  # pymilvus raises its own MilvusException and gRPC errors
            raise VectorIndexError(f"cannot connect to Milvus at {uri}: {exc}") from None
        self._known: set[str] = set()
        self._lock = threading.Lock()
        self._partial: bool | None = None  # does the server take partial updates? (learnt on first use)

    def collection(self, name: str, dim: int) -> str:
        return f"{self.prefix}_{_name_part(name)}_{int(dim)}d"

    def exists(self, name: str, dim: int) -> bool:
        return bool(self.client.has_collection(self.collection(name, dim)))

    def _ensure(self, name: str, dim: int) -> str:
        coll = self.collection(name, dim)
        with self._lock:
            if coll in self._known:
                return coll
            if not self.client.has_collection(coll):
                self._create(coll, dim)
            self.client.load_collection(coll)
            self._known.add(coll)
        return coll

    def _create(self, coll: str, dim: int) -> None:
        from pymilvus import DataType

        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.INT64, is_primary=True)
        schema.add_field("vid", DataType.INT64)
        schema.add_field("law", DataType.VARCHAR, max_length=512)
        schema.add_field("gen_from", DataType.INT64)
        schema.add_field("gen_to", DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(dim))
        params = self.client.prepare_index_params()
        # FLAT: exact inner product, as FAISS gives (statutes: 10^4 vectors). IVF_FLAT: clusters
        # probed `nprobe` at a time, for millions (bench_scale.py, docs/scale.md)
        extra = {"nlist": self.nlist} if self.index_type == "IVF_FLAT" else {}
        params.add_index(field_name="vector", index_type=self.index_type, metric_type="IP", params=extra)
        self.client.create_collection(coll, schema=schema, index_params=params, **_STRONG)

    def index(self, name: str, dim: int, generation: int, create: bool = False, ts: int = 0) -> MilvusVectorIndex:
        """ts: the last write of the build that made `generation` (see last_write_ts); 0: Strong."""
        if not create and not self.exists(name, dim):
            raise VectorIndexError(f"Milvus collection {self.collection(name, dim)} is missing at {self.uri}")
        return MilvusVectorIndex(self, self._ensure(name, dim), int(dim), int(generation), int(ts))

    def last_write_ts(self) -> int:
        """Milvus' hybrid timestamp of this process's last write to any collection it touched (0 if
        the server gives none): committed with a generation, it lets readers elsewhere ask for
        exactly the writes of that build."""
        from pymilvus.client import ts_utils

        endpoint = self.client._get_connection().server_address
        found = [ts_utils.get_collection_ts(c, endpoint, db) for c in self._known for db in ("default", "")]
        return max([int(t or 0) for t in found] + [0])

    def discard_after(self, name: str, dim: int, generation: int) -> None:
        """Rows a build of a later generation wrote without committing: new ones deleted, retired
        ones live again. Run under the writer lock before a build writes."""
        if not self.exists(name, dim):
            return
        coll = self._ensure(name, dim)
        self.client.delete(coll, filter=f"gen_from > {int(generation)}")
        retired = self.query(coll, f"gen_to > {int(generation)} and gen_to < {LIVE}", ["pk"])
        self._set_gen_to(coll, [int(r["pk"]) for r in retired], LIVE)

    def vacuum(self, name: str, dim: int, keep_from: int) -> None:
        if self.exists(name, dim):
            self.client.delete(self._ensure(name, dim), filter=f"gen_to <= {int(keep_from)}")

    def reset(self, name: str, dim: int) -> None:
        coll = self.collection(name, dim)
        with self._lock:
            if self.client.has_collection(coll):
                self.client.drop_collection(coll)
            self._known.discard(coll)

    def search_params(self) -> dict:
        if self.index_type == "IVF_FLAT":
            return {"metric_type": "IP", "params": {"nprobe": self.nprobe}}
        return {"metric_type": "IP"}

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ helpers
    def query(self, coll: str, expr: str, fields: list[str], ts: int = 0) -> list[dict]:
        """Every row of `coll` matching the Milvus expression `expr`, paged (`ts`: as of that time)."""
        rows: list[dict] = []
        it = self.client.query_iterator(
            coll, filter=expr, output_fields=fields, batch_size=_QUERY_PAGE, **_consistency(ts)
        )
        try:
            while batch := it.next():
                rows.extend(batch)
        finally:
            it.close()
        return rows

    def _set_gen_to(self, coll: str, pks: Sequence[int], gen_to: int) -> None:
        for i in range(0, len(pks), _BATCH):
            chunk = [int(pk) for pk in pks[i : i + _BATCH]]
            if self._partial is not False:
                try:
                    self.client.upsert(
                        coll, data=[{"pk": pk, "gen_to": int(gen_to)} for pk in chunk], partial_update=True
                    )
                    self._partial = True
                    continue
                except Exception as exc:  # a server before 2.6 (the 2.3 standalone) has no partial update
                    if self._partial:
                        raise
                    log.info("Milvus at %s has no partial update (%s): rows are rewritten whole", self.uri, exc)
                    self._partial = False
            ids = ", ".join(map(str, chunk))
            rows = self.query(coll, f"pk in [{ids}]", ["pk", "vid", "law", "gen_from", "gen_to", "vector"])
            for row in rows:
                row["gen_to"] = int(gen_to)
            if rows:
                self.client.upsert(coll, data=rows)


class MilvusVectorIndex:
    """One vector set as of one generation. Reads filter by generation; writes (a build) tag rows
    with this generation, which readers of the committed one do not see."""

    filters_by_law = True  # the retriever may hand it a law filter instead of filtering itself

    def __init__(self, store: MilvusStore, collection: str, dim: int, generation: int, ts: int = 0):
        self.store, self.collection, self.dim, self.generation = store, collection, dim, generation
        self.ts = ts  # reads see every write up to it (0: all writes, Strong; -1: this process's, Session)
        self._count: int | None = None

    @property
    def client(self):
        return self.store.client

    @property
    def approximate(self) -> bool:
        """An IVF index: chosen for libraries too large to scan, so every dense query goes to it."""
        return self.store.index_type != "FLAT"

    def _visible(self) -> str:
        g = self.generation
        return f"gen_from <= {g} and gen_to > {g}"

    @property
    def ntotal(self) -> int:
        if self._count is None:
            res = self.client.query(
                self.collection, filter=self._visible(), output_fields=["count(*)"], **_consistency(self.ts)
            )
            self._count = int(res[0]["count(*)"]) if res else 0
        return self._count

    def _rows(self, fields: list[str], expr: str | None = None) -> list[dict]:
        return self.store.query(self.collection, expr or self._visible(), fields, self.ts)

    def ids(self) -> np.ndarray:
        return np.array(sorted(int(r["vid"]) for r in self._rows(["vid"])), dtype=np.int64)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        rows = self._rows(["vid", "vector"])
        if not rows:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        rows.sort(key=lambda r: r["vid"])
        ids = np.array([r["vid"] for r in rows], dtype=np.int64)
        return ids, np.asarray([r["vector"] for r in rows], dtype=np.float32)

    def add(self, ids: np.ndarray, vectors: np.ndarray, laws: Sequence[str] | None = None) -> None:
        ids, vectors = check_batch(ids, vectors, self.dim)
        if len(ids) == 0:
            return
        g = self.generation
        laws = list(laws) if laws is not None else [""] * len(ids)
        for i in range(0, len(ids), _BATCH):
            rows = [
                {
                    "pk": (int(v) << _GEN_BITS) | g,
                    "vid": int(v),
                    "law": law,
                    "gen_from": g,
                    "gen_to": LIVE,
                    "vector": vec,
                }
                for v, law, vec in zip(ids[i : i + _BATCH], laws[i : i + _BATCH], vectors[i : i + _BATCH])
            ]
            self.client.upsert(self.collection, data=rows)
        self._count = None

    def remove(self, ids: np.ndarray) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return 0
        g, removed = self.generation, 0
        for i in range(0, len(ids), _BATCH):
            chunk = ", ".join(str(int(v)) for v in ids[i : i + _BATCH])
            rows = self._rows(["pk", "gen_from"], f"vid in [{chunk}] and {self._visible()}")
            fresh = [int(r["pk"]) for r in rows if int(r["gen_from"]) == g]  # added by this same build
            if fresh:
                self.client.delete(self.collection, ids=fresh)
            self.store._set_gen_to(self.collection, [int(r["pk"]) for r in rows if int(r["gen_from"]) != g], g)
            removed += len(rows)
        self._count = None
        return removed

    def search(self, queries: np.ndarray, k: int, laws: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = check_vectors(queries, self.dim)
        k = max(1, min(int(k), 16384))
        expr = self._visible()
        if laws is not None:
            if not laws:
                return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
            quoted = ", ".join('"' + law.replace("\\", "\\\\").replace('"', '\\"') + '"' for law in laws)
            expr += f" and law in [{quoted}]"
        res = self.client.search(
            self.collection,
            data=[q.tolist() for q in queries],
            limit=k,
            filter=expr,
            output_fields=["vid"],
            search_params=self.store.search_params(),
            **_consistency(self.ts),
        )
        width = max((len(hits) for hits in res), default=0)
        scores = np.full((len(queries), width), -np.inf, np.float32)
        out = np.full((len(queries), width), -1, np.int64)
        for row, hits in enumerate(res):
            for col, hit in enumerate(hits):
                scores[row, col] = hit["distance"]
                out[row, col] = hit["entity"]["vid"]
        return scores, out

    def holds(self, sorted_ids: np.ndarray) -> bool:
        """As many rows as the snapshot's hash map names. A count, not the ids: listing 60k ids
        through gRPC on every open would cost what the snapshot saves; a partly lost collection
        shows in its count, and `hoprag doctor` compares the ids themselves."""
        return self.ntotal == len(sorted_ids)

    def clone(self, generation: int | None = None) -> MilvusVectorIndex:
        """The view a build of `generation` (default: the next) writes: the same rows, no copy."""
        return MilvusVectorIndex(
            self.store, self.collection, self.dim, self.generation + 1 if generation is None else generation
        )

    def to_bytes(self) -> bytes:
        raise VectorIndexError("a Milvus vector set lives in Milvus, not in a snapshot file")
