#!/usr/bin/env bash
# The README's second command: install what is missing, then run every
# check: lint, docs and release notes (warnings are errors), unit tests and
# functional tests on devcloud (brought up here if it is not running).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
export OVERCLOUD_DEVCLOUD_HOME="${OVERCLOUD_DEVCLOUD_HOME:-$PWD/.devcloud}"
export PATH="$PWD/.venv/bin:$PATH"

ruff check overcloud_migrate devcloud tests benchmarks
sphinx-build -q -W -b html doc/source doc/build/html
sphinx-build -q -W -b html releasenotes/source releasenotes/build/html
# Test modules run side by side, on the one bed for the functional ones
# (tests/functional/conftest.py says which may share it; those that may not
# run one after another on one worker). The suite mostly waits on the
# clouds, so more workers than cores pay. OVERCLOUD_TEST_WORKERS=0 (or "-n 0"
# in the arguments) runs everything in one process.
python -m pytest -p no:cacheprovider -rs -n "${OVERCLOUD_TEST_WORKERS:-3}" \
  --dist loadfile "$@"
