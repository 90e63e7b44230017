"""How the values of a migration record read in a table and in JSON.

cliff asks each value for ``human_readable()`` (table, value, csv) or
``machine_readable()`` (json, yaml), so a table says ``8.4 MB`` and
``stop 3.5 s, snapshot 2.8 s`` while JSON keeps the integer and the
numbers.
"""

from cliff import columns
from osc_lib import utils

from overcloud_migrate.v1 import constants


class PhasesColumn(columns.FormattableColumn):
    """``{phase: seconds}`` in the order the phases happened."""

    def human_readable(self):
        return ', '.join('%s %.1f s' % (phase, seconds or 0.0)
                         for phase, seconds in (self._value or {}).items())

    def machine_readable(self):
        return {phase: seconds
                for phase, seconds in (self._value or {}).items()}


class BytesColumn(columns.FormattableColumn):
    """A byte count: with a decimal unit in tables, an integer in JSON."""

    UNITS = ('B', 'kB', 'MB', 'GB', 'TB', 'PB')

    def human_readable(self):
        if self._value in (None, ''):
            return ''
        size = float(self._value)
        for unit in self.UNITS:
            if size < 1000 or unit == self.UNITS[-1]:
                break
            size /= 1000
        if unit == 'B':
            return '%d B' % size
        return '%.1f %s' % (size, unit)

    def machine_readable(self):
        return '' if self._value in (None, '') else int(self._value)


class OptionalColumn(columns.FormattableColumn):
    """A number that may be unknown (None): blank when unknown."""

    def human_readable(self):
        return '' if self._value is None else self._value

    def machine_readable(self):
        return '' if self._value is None else self._value


#: Field -> formatter of a migration run's rows.
MIGRATE_FORMATTERS = {
    'bytes': BytesColumn,
    'rate': OptionalColumn,
    'downtime': OptionalColumn,
    'phases': PhasesColumn,
}


def migrate_rows(records):
    """The rows of ``records`` (resources and servers of a run), in the
    order of :data:`constants.MIGRATE_COLUMNS`."""
    return [utils.get_dict_properties(record, constants.MIGRATE_FIELDS,
                                      formatters=MIGRATE_FORMATTERS)
            for record in records]


def server_dict(record):
    """A server record keyed by column header, without the Type column, its
    values raw (``migration show`` lists its servers so)."""
    values = utils.get_dict_properties(record, constants.MIGRATE_FIELDS[1:])
    return {header: '' if value is None else value
            for header, value in zip(constants.MIGRATE_COLUMNS[1:], values)}


class RecordListColumn(columns.FormattableColumn):
    """A list of dicts: one ``key='value'`` line per dict in tables, the
    list itself in JSON (``format_columns.ListColumn`` joins strings only,
    so a table of dicts failed)."""

    def human_readable(self):
        return '\n'.join(utils.format_dict(record)
                         for record in self._value or ())

    def machine_readable(self):
        return [dict(record) for record in self._value or ()]
