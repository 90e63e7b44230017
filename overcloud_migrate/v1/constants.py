"""Column tuples of the commands' output."""

from overcloud_migrate.plan import prechecks
from overcloud_migrate.plan import replicate

MIGRATE_COLUMNS = replicate.COLUMNS
PRECHECK_COLUMNS = prechecks.COLUMNS
