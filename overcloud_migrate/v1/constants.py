"""Column tuples of the commands' output."""

from overcloud_migrate.plan import prechecks
from overcloud_migrate.workflow import runner

MIGRATE_COLUMNS = runner.COLUMNS
PRECHECK_COLUMNS = prechecks.COLUMNS
MIGRATION_COLUMNS = ('ID', 'Created', 'State', 'Servers', 'Source cloud',
                     'Destination cloud')
