"""The HTTP service's request and response models: what the OpenAPI schema states.

Public API:
    Error, ValidationProblem                       the bodies of 4xx/5xx answers and of 422
    Filters                                        law / pcode / key, one value or a list; .as_dict() -> dict | None
    Hit, Hits, HopHits                             answers of /search and /hop-search (Hit made from retrieval.Hit)
    BuildRequest, Job                              POST /builds and what a job reports
    SearchRequest, HopSearchRequest                the bodies of /search and /hop-search, without limits
    request_models(settings) -> (SearchRequest, HopSearchRequest)   the same with the limits of Settings
    error_responses(*codes, invalid=False) -> dict                  a route's `responses=`: Error per
                                                                    code, ValidationProblem for 422 if invalid
    model_of(dataclass, name) -> type[BaseModel]   a response model from a dataclass of the Python API
"""

import dataclasses
import datetime as dt
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..retrieval import Hit as _HitRecord
from ..settings import Settings

__all__ = [
    "Error",
    "ValidationProblem",
    "Filters",
    "Hit",
    "Hits",
    "HopHits",
    "BuildRequest",
    "Job",
    "SearchRequest",
    "HopSearchRequest",
    "request_models",
    "error_responses",
    "model_of",
]


class Error(BaseModel):
    detail: str
    error: str | None = Field(None, description="the index's exception class (QueryError, IndexBusy, ...)")


class ValidationProblem(BaseModel):
    detail: str = Field(description="every problem in one line: field: message; ...")
    errors: list[dict[str, Any]]


_Name = Annotated[str, Field(min_length=1, max_length=200, description="one value")]
_EmbedderName = Annotated[
    str,
    Field(min_length=1, max_length=300, description="bge-m3 | st:<name-or-path> | use-multilingual | gemini:<model>"),
]
_LLMName = Annotated[str, Field(min_length=1, max_length=300, description="gemini:<model> | openai:<model> | none")]
# an empty list would silently mean "no filter": at least one value
_OneOrMany = _Name | Annotated[list[_Name], Field(min_length=1, max_length=100)]


_Scalar = str | int | float | bool


class Filters(BaseModel):
    """Narrow the answer; each filter takes one value or a list (any of them matches). Besides law,
    pcode and key, any field of the passages' metadata (a JSONL library's own fields), by equality."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, _Scalar | list[_Scalar]] = Field(init=False)
    law: _OneOrMany | None = Field(None, description="law name or short name, e.g. 勞動基準法 or 勞基法")
    pcode: _OneOrMany | None = Field(None, description="law code, e.g. N0030001")
    key: _OneOrMany | None = Field(None, description="passage key, e.g. N0030001:24")

    def as_dict(self) -> dict | None:
        return self.model_dump(exclude_none=True) or None


def model_of(dc: type, name: str) -> type[BaseModel]:
    """A response model made from a dataclass of the Python API, its field docs as descriptions:
    the HTTP schema cannot drift from what `Index.search` returns."""
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(dc):
        hint = typing.get_type_hints(dc)[f.name]
        default = ... if f.default is dataclasses.MISSING else f.default
        fields[f.name] = (hint, Field(default, description=f.metadata.get("doc")))
    return create_model(name, __config__=ConfigDict(extra="allow"), **fields)


if typing.TYPE_CHECKING:
    Hit = BaseModel  # made at runtime: retrieval.Hit's fields, which mypy cannot see in a created model
else:
    Hit = model_of(_HitRecord, "Hit")


class Hits(BaseModel):
    hits: list[Hit]
    generation: int = Field(description="the committed generation every hit of this answer comes from")


class HopHits(Hits):
    llm_calls: int = Field(0, description="llm mode: LLM calls this answer made (at most HOPRAG_HOP_MAX_LLM_CALLS)")
    llm_failures: int = Field(0, description="llm mode: calls that failed; those passages kept the similarity choice")
    deadline_hit: bool = Field(
        False, description="llm mode: the LLM work ran out of HOPRAG_HOP_LLM_DEADLINE_S; the rest chose by similarity"
    )
    steps: list[dict] = Field(
        default_factory=list,
        description="every edge the walk followed (from, to, kind, "
        "direction, question), also to passages that did not make the top k",
    )


class BuildRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    library: Annotated[
        str,
        Field(
            min_length=1,
            max_length=4096,
            description=(
                "folder or file inside a configured library root; a relative path is taken from the first root"
            ),
        ),
    ]
    embedder: _EmbedderName | None = None
    llm: _LLMName | None = None
    as_of: dt.date | None = Field(None, description="the date the library describes [default: its newest 最新異動日期]")


class PassageIn(BaseModel):
    """A passage to put in: a key the index may hold (then what is not given is kept) or a new one."""

    model_config = ConfigDict(extra="forbid")
    key: Annotated[str, Field(min_length=1, max_length=500, description="e.g. N0030001:24 or a JSONL id")]
    text: Annotated[str, Field(min_length=1, max_length=200_000)]
    metadata: dict[str, Any] | None = Field(None, description="any JSON fields; filters can name them")
    law: Annotated[str, Field(max_length=500)] | None = None
    article: Annotated[str, Field(max_length=50)] | None = None
    doc_key: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description='the document a new passage joins [default: "upserts"]'
    )


class UpsertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    passages: Annotated[list[PassageIn], Field(min_length=1, max_length=10_000)]


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: Annotated[list[Annotated[str, Field(min_length=1, max_length=500)]], Field(min_length=1, max_length=10_000)]


class Job(BaseModel):
    id: str
    status: Literal["queued", "running", "committed", "failed"]
    stage: str | None = Field(None, description="the stage the progress counts belong to (embed, llm, ...)")
    done: int
    total: int
    report: dict[str, Any] | None = Field(None, description="the BuildReport once committed")
    error: str | None = Field(None, description="why the build failed")
    library: str
    embedder: str | None = None
    llm: str | None = None
    as_of: str | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None


def error_responses(*codes: int, invalid: bool = False) -> dict:
    """A route's `responses=`: the Error body for each code, and ValidationProblem for 422 when the
    route takes input that can fail the schema."""
    responses: dict = {c: {"model": Error} for c in codes}
    return (responses | {422: {"model": ValidationProblem}}) if invalid else responses


# The bodies of /search and /hop-search as type checkers see them; request_models() makes the ones
# an app serves, each with the limits of its Settings.
_AsOf = Annotated[dt.date | None, Field(description="the law in force on this date (YYYY-MM-DD); absent: as now")]


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str
    k: int = 10
    mode: Literal["dense", "questions", "hybrid", "bm25"] = "dense"
    filters: Filters | None = None
    as_of: _AsOf = None


class HopSearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str
    k: int = 10
    n_hop: int = 2
    mode: Literal["similarity", "llm"] = "similarity"
    filters: Filters | None = None
    as_of: _AsOf = None


def request_models(settings: Settings) -> tuple[type[SearchRequest], type[HopSearchRequest]]:
    """SearchRequest and HopSearchRequest with the limits of `settings` (max_query_chars, max_k,
    max_hops), so that the OpenAPI schema states them."""
    query = (
        str,
        Field(
            min_length=1,
            max_length=settings.max_query_chars,
            description="the question, or an article citation such as 勞基法第24條",
        ),
    )
    # strict: JSON true is not 1, "5" is not 5
    k = (int, Field(min(10, settings.max_k), ge=1, le=settings.max_k, strict=True, description="how many hits"))
    n_hop = (
        int,
        Field(
            min(2, settings.max_hops), ge=0, le=settings.max_hops, strict=True, description="rounds of edge following"
        ),
    )
    search = create_model("SearchRequest", __base__=SearchRequest, query=query, k=k)
    hop = create_model("HopSearchRequest", __base__=HopSearchRequest, query=query, k=k, n_hop=n_hop)
    return search, hop
