#!/usr/bin/env bash
# Refresh upper-constraints.txt, the pinned set of every Python package the
# plugin, devcloud and the test/doc tools resolve to (the way OpenStack's
# upper-constraints works): resolve the requirement files afresh, without the
# old pins, in a throwaway virtualenv, check that the set is consistent
# (pip check), then freeze it. tools/bootstrap.sh installs with this file.
#
#   bash tools/refresh-constraints.sh              # after changing a requirement
#   bash tools/refresh-constraints.sh 'pkg>=2'     # also resolve extra packages
#
# Review the diff and commit it with the change that needed it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=upper-constraints.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$work/pip.log"
fail() {
  echo "refresh-constraints: $1 failed; the last lines of its log:" >&2
  tail -n 25 "$log" >&2
  exit 1
}
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --upgrade pip >"$log" 2>&1 || fail "upgrading pip"
echo "refresh-constraints: resolving (a few minutes)" >&2
# The project's own two distributions are installed too (editable, as
# bootstrap does, and left out of the freeze), to resolve their dependencies.
"$work/venv/bin/pip" install -r requirements.txt -r test-requirements.txt \
  -r doc/requirements.txt -e ".[timeline]" -e ./devcloud "$@" >>"$log" 2>&1 \
  || fail "resolving"
"$work/venv/bin/pip" check >>"$log" 2>&1 || fail "pip check"
{
  echo "# The whole resolved Python tree of overcloud-migrate, devcloud and the"
  echo "# test/doc tools; tools/bootstrap.sh installs with it (pip -c)."
  echo "# Refresh: bash tools/refresh-constraints.sh"
  "$work/venv/bin/pip" freeze --exclude-editable \
    | grep -v -i -E '^(pip|setuptools|wheel)=='
} >"$work/$out"
mv "$work/$out" "$out"
echo "refresh-constraints: wrote $out ($(grep -c '==' "$out") packages)" >&2
