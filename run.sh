#!/usr/bin/env bash
# One entry point for a fresh machine: creates the project's virtual environment from the
# pinned requirements (once; again when they change), then runs the job asked for.
#   bash run.sh main    the main job: train a CMPE-SE network on the bundled digits set
#                       with train_cifar.py (extra arguments go to it), export it
#   bash run.sh test    the test suite (extra arguments go to pytest)
# CMPESE_MXNET selects the MXNet build (default mxnet==1.9.1, CPU with oneDNN;
# mxnet-cu112==1.9.1 for CUDA 11.2). CMPESE_VENV moves the environment (default .venv).
set -euo pipefail
cd "$(dirname "$0")"
VENV=${CMPESE_VENV:-.venv}
MXNET_PKG=${CMPESE_MXNET:-mxnet==1.9.1}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}

want="$(cat requirements.txt setup.py | sha256sum | cut -c1-16) $MXNET_PKG"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.cmpese-stamp" 2>/dev/null)" != "$want" ]; then
  echo "[run.sh] setting up $VENV with $MXNET_PKG and requirements.txt ..." >&2
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$MXNET_PKG" -r requirements.txt
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  # the native rescale operators (cmpese/native/fused.cc), compiled once and cached; when they
  # cannot be built, one log line and the stock operators (this never stops the script)
  echo "[run.sh] building the native rescale operators ..." >&2
  "$VENV/bin/python" -c "import logging; logging.basicConfig(format='[run.sh] %(message)s')
import cmpese.native as n; n.load()" || true
  echo "$want" > "$VENV/.cmpese-stamp"
fi

job=${1:-}
[ $# -gt 0 ] && shift
case "$job" in
  main) exec "$VENV/bin/python" train_cifar.py --model cmpe_se_preresnet20_1x1 --dataset digits \
         --export --save-dir "runs/main-$(date +%Y%m%d-%H%M%S)" "$@" ;;
  test) exec "$VENV/bin/python" -m pytest tests "$@" ;;
  *) echo "usage: bash run.sh main|test [args]" >&2; exit 2 ;;
esac
