"""Helpers of the command-line layer, shared by the ``v1/`` commands: option
helpers, the ``--transport`` options collected from the drivers, progress
on standard error, the report-then-fail mixin and the DTN endpoint of the
catalog.  Only ``v1/`` imports this package (it imports the transports and
the journal, so nothing below the commands may)."""
