#!/usr/bin/env bash
# One command for each main job; sets up ./.venv first (scripts/bootstrap.sh).
#
#   bash scripts/run.sh demo [demo.py options]    synthetic data, CPU training, a prediction
#   bash scripts/run.sh test [pytest options]     the test suite
set -euo pipefail
cd "$(dirname "$0")/.."
job=${1:-}
shift || true
case "$job" in
  demo) bash scripts/bootstrap.sh; exec .venv/bin/python scripts/demo.py "$@" ;;
  test) bash scripts/bootstrap.sh; exec .venv/bin/python -m pytest "$@" ;;
  *) echo "usage: bash scripts/run.sh demo|test [options]" >&2; exit 2 ;;
esac
