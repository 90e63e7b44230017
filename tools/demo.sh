#!/usr/bin/env bash
# The README's first command: install what is missing, bring up devcloud
# (two real OpenStack clouds on 127.0.0.1) and show both answering.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
export OVERCLOUD_DEVCLOUD_HOME="${OVERCLOUD_DEVCLOUD_HOME:-$PWD/.devcloud}"
export PATH="$PWD/.venv/bin:$PATH"

overcloud-devcloud up
eval "$(overcloud-devcloud env)"
for cloud in devcloud-a devcloud-b; do
  echo
  echo "== $cloud: $(openstack --os-cloud "$cloud" catalog show identity -f value -c endpoints | head -n 1)"
  openstack --os-cloud "$cloud" compute service list -c Binary -c Host -c State
  openstack --os-cloud "$cloud" image list
  openstack --os-cloud "$cloud" network list -c Name -c Subnets
  openstack --os-cloud "$cloud" flavor list -c Name -c RAM -c VCPUs -c Disk
done
echo
overcloud-devcloud status -c Service -c Port -c PID -c Answers -c 'RSS MiB'
echo
echo "Both clouds are up. Try: eval \"\$(.venv/bin/overcloud-devcloud env)\"; .venv/bin/openstack --os-cloud devcloud-b server list"
echo "Stop them with: OVERCLOUD_DEVCLOUD_HOME=$OVERCLOUD_DEVCLOUD_HOME .venv/bin/overcloud-devcloud down"
