"""The shared tail of the commands that run servers (migrate, resume)."""

from osc_lib import exceptions

from overcloud_migrate import journal as journal_mod
from overcloud_migrate.workflow import warm

#: what became of the failed servers' work, by warm step (None: cold)
AFTER_FAILURE = {
    None: 'the failed ones were rolled back',
    warm.SYNC: 'what their rounds copied stays at the destination until '
               '`openstack overcloud migration rollback %s`',
    warm.CUTOVER: 'each failed cut-over deleted what it booted and '
                  'restarted its source server; the synced volumes stay '
                  'for another try',
}


class ReportThenFail:
    """Print the report first, then exit non-zero if any server failed,
    each failed server's reason on a line of its own.

    A mixin for a Lister whose ``take_action`` sets ``self.outcome`` (a
    :class:`overcloud_migrate.workflow.runner.Outcome`).
    """

    outcome = None

    def run(self, parsed_args):
        self.outcome = None
        result = super().run(parsed_args)
        outcome = self.outcome
        if outcome is not None and outcome.failed:
            after = AFTER_FAILURE.get(outcome.warm, AFTER_FAILURE[None])
            if '%s' in after:
                after %= outcome.migration_id
            reasons = ['  %s %s' % (r['name'], r['status'])
                       for r in outcome.records
                       if r.get('type') == 'server'
                       and (r.get('status') or '').startswith(
                           journal_mod.FAILED)]
            raise exceptions.CommandError('\n'.join(
                ['%d of %d servers failed (migration %s: `openstack '
                 'overcloud migration show %s`; %s)%s'
                 % (outcome.failed, outcome.total, outcome.migration_id,
                    outcome.migration_id, after, ':' if reasons else '')]
                + reasons))
        return result
