"""Column tuples of the commands' output.

A ``*_COLUMNS`` tuple holds the headers a command prints; the matching
``*_FIELDS`` tuple holds the record keys each header is read from
(``osc_lib.utils.get_dict_properties`` takes the fields, the headers
go out unchanged).
"""

from overcloud_migrate.plan import prechecks

#: One row per resource and per server of a migration run.
MIGRATE_COLUMNS = ('Type', 'Name', 'Source ID', 'Action', 'Destination ID',
                   'Status', 'Bytes', 'MB/s', 'Downtime (s)',
                   'Destination Host', 'Phases')
MIGRATE_FIELDS = ('type', 'name', 'source_id', 'action', 'dest_id',
                  'status', 'bytes', 'rate', 'downtime', 'dest_host',
                  'phases')
PRECHECK_COLUMNS = prechecks.COLUMNS
MIGRATION_COLUMNS = ('ID', 'Created', 'State', 'Servers', 'Source cloud',
                     'Destination cloud')
