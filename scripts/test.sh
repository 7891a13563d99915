#!/usr/bin/env bash
# Runs the test suite (slow end-to-end tests included) in an isolated Prefect home and LORAFORGE_HOME.
# Arguments go to pytest as they are. pytest's own exit code is this script's: a selection that collects no
# tests (pytest exit 5, e.g. a misspelt -k or path) is an error, not a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
export PREFECT_HOME="${PREFECT_HOME:-$(mktemp -d)}"
export DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=120
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests for: ${*:-(all of tests/)}; that is a failure (exit 5)" >&2
fi
exit "$rc"
