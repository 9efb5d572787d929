#!/usr/bin/env bash
# infinity-emb (an OpenAI-compatible /embeddings server) in a virtualenv of its own, so that its
# pins (transformers, optimum, torch) never meet the project's: the real server the openai:<model>
# embedder is tested against (tests/test_embedder_infinity.py). torch is the CPU build (PyPI's
# default Linux wheel carries CUDA: gigabytes). Made once per machine under
# $HOPRAG_INFINITY_DIR (default ~/.cache/hoprag/infinity); prints the path of its `infinity_emb`.
#
#   export HOPRAG_TEST_INFINITY="$(scripts/infinity_venv.sh)"
set -euo pipefail
DIR="${HOPRAG_INFINITY_DIR:-$HOME/.cache/hoprag/infinity}"
VERSION="0.0.78"
TORCH="2.13.0+cpu"
BIN="$DIR/venv/bin"
if ! "$BIN/python" -c "import infinity_emb, sys; sys.exit(infinity_emb.__version__ != '$VERSION')" 2>/dev/null; then
  echo "infinity: making $DIR/venv (infinity-emb $VERSION, torch $TORCH)" >&2
  rm -rf "$DIR/venv"
  mkdir -p "$DIR"
  python3 -m venv "$DIR/venv"
  "$BIN/pip" install -q --upgrade pip >&2
  # --retries 0: where PyTorch's index is unreachable but a wheelhouse has the wheel, move on at once
  "$BIN/pip" install -q --retries 0 "torch==$TORCH" --extra-index-url https://download.pytorch.org/whl/cpu >&2
  "$BIN/pip" install -q "infinity-emb[server,torch]==$VERSION" >&2
fi
echo "$BIN/infinity_emb"
