#!/usr/bin/env bash
# The README's first command: install what is missing, bring up devcloud
# (two real OpenStack clouds on 127.0.0.1), build the 3-tier project in
# devcloud-a and migrate it to devcloud-b, printing the report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/bootstrap.sh
export OVERCLOUD_DEVCLOUD_HOME="${OVERCLOUD_DEVCLOUD_HOME:-$PWD/.devcloud}"
export OVERCLOUD_MIGRATE_JOURNAL_URL="${OVERCLOUD_MIGRATE_JOURNAL_URL:-sqlite:///$OVERCLOUD_DEVCLOUD_HOME/demo-journal.sqlite}"
export PATH="$PWD/.venv/bin:$PATH"

overcloud-devcloud up
eval "$(overcloud-devcloud env)"

echo "== clearing what an earlier demo left in devcloud-b" >&2
overcloud-devcloud scenario --cloud devcloud-b --delete >/dev/null
echo "== building the 3-tier project in devcloud-a" >&2
overcloud-devcloud scenario --cloud devcloud-a
echo "== what would be done (dry run)" >&2
openstack --os-cloud devcloud-a overcloud migrate 3t-web 3t-app 3t-db \
  --dest-cloud devcloud-b --dry-run -c Type -c Name -c Action -c Status
echo "== migrating" >&2
openstack --os-cloud devcloud-a overcloud migrate 3t-web 3t-app 3t-db \
  --dest-cloud devcloud-b --parallel 3 \
  -c Type -c Name -c 'Destination ID' -c Status -c Bytes -c 'MB/s' \
  -c 'Downtime (s)' -c Phases
echo "== devcloud-b now runs" >&2
openstack --os-cloud devcloud-b server list -c Name -c Status -c Networks -c Image
migration=$(openstack overcloud migration list -f value -c ID | tail -n 1)
timeline="$OVERCLOUD_DEVCLOUD_HOME/demo-timeline.svg"
openstack overcloud migration show "$migration" --timeline "$timeline" \
  -c id -c state
echo
echo "The timeline of migration $migration (one bar per server and phase): $timeline"
echo "The migration is in the journal: openstack overcloud migration list"
echo "Stop the clouds with: OVERCLOUD_DEVCLOUD_HOME=$OVERCLOUD_DEVCLOUD_HOME .venv/bin/overcloud-devcloud down"
