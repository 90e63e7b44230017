"""The one error root of overcloud-migrate.

Every error this package raises on purpose derives from
:class:`OvercloudMigrateError`, so that a command catches one class and turns
it into a :class:`osc_lib.exceptions.CommandError` sentence, and a service
(the DTN API, the Receiver) maps it to its own reply in one place.

This module sits on the ground floor: it imports nothing of ours and no
third-party library, so the DTN service (which runs on hosts without an
OpenStack client) can use it too.
"""


class OvercloudMigrateError(Exception):
    """The root of every error of ours.

    The message is a whole sentence that names the object and the cause.
    Subclasses may set ``message`` as a template filled from keyword
    arguments, e.g. ``message = 'Volume %(volume)s is multi-attach.'``.
    """

    message = None

    def __init__(self, *args, **kwargs):
        if not args and self.message and kwargs:
            args = (self.message % kwargs,)
        self.details = kwargs
        super().__init__(*args)
