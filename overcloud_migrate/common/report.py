"""The shared tail of the commands that run servers (migrate, resume)."""

from osc_lib import exceptions


class ReportThenFail:
    """Print the report first, then exit non-zero if any server failed.

    A mixin for a Lister whose ``take_action`` sets ``self.outcome`` (a
    :class:`overcloud_migrate.workflow.runner.Outcome`).
    """

    outcome = None

    def run(self, parsed_args):
        self.outcome = None
        result = super().run(parsed_args)
        if self.outcome is not None and self.outcome.failed:
            raise exceptions.CommandError(
                '%d of %d servers failed (migration %s: `openstack overcloud '
                'migration show %s`; the failed ones were rolled back)'
                % (self.outcome.failed, self.outcome.total,
                   self.outcome.migration_id, self.outcome.migration_id))
        return result
