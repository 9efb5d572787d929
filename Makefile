# Two commands for a fresh machine:
#   make quickstart   install, index the bundled 2024 laws with the offline embedder, run a query
#   make test         install (if needed) and run the test suite
PYTHON ?= python3
VENV   ?= .venv
DATA   ?= ../shared/data
HOME_DIR ?= .hoprag
# Pinned so pip never resolves a multi-GB CUDA build where a CPU wheel is wanted (override freely).
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install quickstart test bench audit clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(BIN)/.installed

quickstart: install
	$(BIN)/hoprag build $(DATA)/laws/2024-10-11 --embedder use-multilingual --home $(HOME_DIR)
	$(BIN)/hoprag query "雇主延長工作時間之工資如何計算" -k 5 --home $(HOME_DIR)

test: install
	HOPRAG_DATA=$(abspath $(DATA)) $(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/bench_store.py --out bench/results/store-$$(hostname -s).json

# needs a machine that reaches the PyPI/OSV vulnerability services
audit: install
	$(BIN)/python -m pip install -q pip-audit
	$(BIN)/pip-audit --skip-editable

clean:
	rm -rf $(VENV) $(HOME_DIR) .pytest_cache
