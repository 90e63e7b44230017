"""The fault-injection test hook, read from ``OVERCLOUD_MIGRATE_FAULT``.

Functional tests set it to a comma-separated list of points, so that a
crash or a damaged byte happens exactly where the test wants it instead of
after a guessed sleep:

* ``kill:<point>``: the process dies with exit status 137, as with
  ``kill -9``, when it reaches ``<point>`` (the workflow's
  ``before:<task>``/``after:<task>``/``during:<...>``, replication's
  ``after:create:<kind>``);
* ``transfer:corrupt``: one byte of a transfer is flipped (see
  :class:`overcloud_migrate.transports.base.HashingReader`).

Unset (always, outside tests), nothing happens.
"""

import os

ENV = 'OVERCLOUD_MIGRATE_FAULT'


def wanted(name):
    """Whether the hook asks for ``name``."""
    return name in os.environ.get(ENV, '').split(',')


def kill(point):
    """Die like kill -9 when the hook asks for it at ``point``."""
    if wanted('kill:%s' % point):
        os._exit(137)
