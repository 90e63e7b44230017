"""``openstack overcloud transport list``: the installed transport drivers.

Reads the ``overcloud_migrate.transports`` stevedore namespace without
instantiating any driver: the Available column comes from each driver's
cheap ``available()`` class method (an ``ssh`` client on PATH, ...), never
from a connection. A driver that cannot even be imported is listed as not
available, with the import error as its description.
"""

import logging
import re
import sys

from osc_lib.cli import format_columns
from osc_lib.command import command
import stevedore

from overcloud_migrate.cli import transport_options
from overcloud_migrate.transports import base

LOG = logging.getLogger(__name__)

COLUMNS = ('Name', 'Capabilities', 'Available', 'Options', 'Description')


def _summary(plugin):
    """First line of the driver's docstring, else of its module's."""
    doc = plugin.__dict__.get('__doc__') if isinstance(plugin, type) else None
    if not doc:
        doc = getattr(sys.modules.get(plugin.__module__), '__doc__', None)
    doc = (doc or '').strip()
    line = doc.splitlines()[0].strip() if doc else ''
    # module docstrings start with ``name``: ...
    line = re.sub(r'^``[\w.-]+``:\s*', '', line)
    return line[:1].upper() + line[1:]


def _available(plugin):
    check = getattr(plugin, 'available', None)
    if check is None:
        return True
    try:
        return bool(check())
    except Exception as exc:  # a listing must not die on one driver
        LOG.debug('available() of transport %s failed: %s',
                  getattr(plugin, 'name', plugin), exc)
        return False


def transport_rows():
    """One ``(name, capabilities, available, options, description)`` per
    driver, sorted by name; ``options`` are its `overcloud migrate`
    options."""
    failed = []

    def on_failure(manager, entrypoint, exc):
        failed.append((entrypoint.name, exc))

    manager = stevedore.ExtensionManager(
        base.NAMESPACE, invoke_on_load=False,
        on_load_failure_callback=on_failure)
    rows = [(ext.name, sorted(getattr(ext.plugin, 'capabilities', ())),
             _available(ext.plugin), transport_options.option_names(ext.name),
             _summary(ext.plugin))
            for ext in manager]
    rows += [(name, [], False, transport_options.option_names(name),
              'Cannot be loaded: %s' % exc) for name, exc in failed]
    return sorted(rows)


class ListTransport(command.Lister):
    """List the transport drivers an image can travel with"""

    auth_required = False

    def take_action(self, parsed_args):
        rows = [(name, format_columns.ListColumn(caps), available,
                 format_columns.ListColumn(opts), summary)
                for name, caps, available, opts, summary in transport_rows()]
        return COLUMNS, rows
