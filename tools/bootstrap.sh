#!/usr/bin/env bash
# Install everything overcloud-migrate and its test bed need, once:
# Debian packages (as root; otherwise prints the apt-get command), then a
# virtualenv in .venv with the plugin, devcloud and the test/doc tools,
# pinned by upper-constraints.txt (refresh: bash tools/refresh-constraints.sh),
# then `pip check`. One line per step with its time; the tools' own output
# goes to .venv/bootstrap.log, whose last lines are printed on a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$PWD/.venv/bootstrap.log
step_start=0
step() {   # step "what": starts timing a step
  step_name=$1; step_start=$(date +%s%N)
}
done_step() {
  local ms=$(( ($(date +%s%N) - step_start) / 1000000 ))
  printf 'bootstrap: %-44s %4d.%d s\n' "$step_name" $((ms / 1000)) \
    $((ms % 1000 / 100)) >&2
}
run() {    # run CMD...: into the log; on failure its tail and path
  if ! "$@" >>"$log" 2>&1; then
    echo "bootstrap: $step_name failed; the last lines of $log:" >&2
    tail -n 30 "$log" | sed 's/^/  | /' >&2
    echo "bootstrap: the whole log: $log" >&2
    exit 1
  fi
}
mkdir -p .venv
: >"$log"

need=()
[ -x /usr/sbin/mariadbd ] || command -v mariadbd >/dev/null || need+=(mariadb-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
command -v gcc >/dev/null || need+=(gcc)
[ -x /usr/sbin/globus-gridftp-server ] || command -v globus-gridftp-server >/dev/null || need+=(globus-gridftp-server-progs)
command -v globus-url-copy >/dev/null || need+=(globus-gass-copy-progs)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v curl >/dev/null || need+=(curl)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || need+=(python3-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    step "Debian packages: ${need[*]}"
    run apt-get update -qq
    DEBIAN_FRONTEND=noninteractive run apt-get install -y -qq "${need[@]}"
    done_step
  else
    echo "bootstrap: missing Debian packages; run: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "bootstrap: Python 3.11 or newer is required (found $(python3 --version))" >&2; exit 1; }

stamp=.venv/.installed
inputs=$(cat requirements.txt test-requirements.txt doc/requirements.txt \
  setup.cfg devcloud/pyproject.toml upper-constraints.txt | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
  # Installed already; the set must still be consistent (a second or so).
  step "pip check"
  run .venv/bin/pip check
  exit 0
fi
if [ ! -x .venv/bin/python ]; then
  step "virtualenv .venv"
  run python3 -m venv .venv
  done_step
fi
step "pip itself"
run .venv/bin/pip install --upgrade pip
done_step
echo "bootstrap: Python packages into .venv, pinned by upper-constraints.txt (a few minutes the first time; log: $log)" >&2
step "Python packages"
run .venv/bin/pip install -c upper-constraints.txt \
  -r requirements.txt -r test-requirements.txt -r doc/requirements.txt \
  -e ".[timeline]" -e ./devcloud
done_step
step "pip check"
run .venv/bin/pip check
done_step
echo "$inputs" > "$stamp"
