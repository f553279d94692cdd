#!/usr/bin/env bash
# One command for each main job; sets up ./.venv first (scripts/bootstrap.sh).
#
#   bash scripts/run.sh demo [demo options]       synthetic data, CPU training, predictions
#   bash scripts/run.sh test [pytest options]     the test suite
#
# PYTHON=/path/to/python3.12 chooses the interpreter (see bootstrap.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
job=${1:-}
shift || true
case "$job" in
  demo) bash scripts/bootstrap.sh; exec .venv/bin/music-classification demo "$@" ;;
  test) bash scripts/bootstrap.sh; exec .venv/bin/python -m pytest "$@" ;;
  *) echo "usage: bash scripts/run.sh demo|test [options]" >&2; exit 2 ;;
esac
