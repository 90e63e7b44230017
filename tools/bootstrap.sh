#!/usr/bin/env bash
# Install everything overcloud-migrate and its test bed need, once:
# Debian packages (as root; otherwise prints the apt-get command), then a
# virtualenv in .venv with the plugin, devcloud and the test/doc tools.
set -euo pipefail
cd "$(dirname "$0")/.."

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
    echo "bootstrap: installing Debian packages: ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "bootstrap: missing Debian packages; run: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "bootstrap: Python 3.11 or newer is required (found $(python3 --version))" >&2; exit 1; }

stamp=.venv/.installed
inputs=$(cat requirements.txt test-requirements.txt doc/requirements.txt \
  setup.cfg devcloud/pyproject.toml | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
echo "bootstrap: installing Python packages into .venv (a few minutes the first time)" >&2
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -r requirements.txt -r test-requirements.txt \
  -r doc/requirements.txt -e . -e ./devcloud
echo "$inputs" > "$stamp"
