"""One migration run: prechecks, then the network world, then servers.

Plain logic used by ``openstack overcloud migrate``; no CLI here.
"""

import dataclasses

from overcloud_migrate.plan import prechecks
from overcloud_migrate.plan import replicate


class PrecheckFailed(Exception):
    """Prechecks found problems; ``problems`` lists them all."""

    def __init__(self, problems):
        self.problems = problems
        super().__init__('%d precheck%s failed; nothing was changed:\n%s' % (
            len(problems), '' if len(problems) == 1 else 's',
            prechecks.format_table(problems)))


class MigrationFailed(Exception):
    """The run failed after it started; the journal holds the record."""

    def __init__(self, message, migration_id):
        self.migration_id = migration_id
        super().__init__('%s (migration %s; see `openstack overcloud '
                         'migration show %s`)' % (message, migration_id,
                                                  migration_id))


@dataclasses.dataclass
class Options:
    dry_run: bool = False
    floating_ip_mode: str = 'keep'


def is_admin(connection):
    """True when the connection's token carries the admin role."""
    access = connection.session.auth.get_access(connection.session)
    return 'admin' in (access.role_names or [])


class Run:

    def __init__(self, plan, source, dest, source_identity, dest_identity,
                 journal, options, progress=None):
        self.plan = plan
        self.source = source
        self.dest = dest
        self.source_key = source_identity.key()
        self.dest_key = dest_identity.key()
        self.journal = journal
        self.options = options
        self.progress = progress or (lambda message: None)
        self.admin = is_admin(dest)

    def check(self):
        problems = prechecks.Prechecks(
            self.plan, self.dest, self.journal, self.source_key,
            self.dest_key, self.admin, source=self.source).run()
        if problems:
            raise PrecheckFailed(problems)

    def _replicator(self, migration_id=None):
        return replicate.Replicator(
            self.plan, self.dest, self.journal, self.source_key,
            self.dest_key, migration_id=migration_id, admin=self.admin,
            dry_run=self.options.dry_run,
            floating_ip_mode=self.options.floating_ip_mode,
            progress=self.progress)

    def execute(self):
        """Check, then replicate (or only say what would be done).

        Returns the rows (see replicate.COLUMNS) and the migration ID (None
        for a dry run).
        """
        self.check()
        if self.options.dry_run:
            rows = self._replicator().run()
            return rows + self._server_rows('planned'), None
        migration_id = self.journal.start(self.source_key, self.dest_key,
                                          self.plan.to_dict())
        self.journal.log(migration_id, 'replicating the network world of %d '
                         'servers' % len(self.plan.servers))
        try:
            rows = self._replicator(migration_id).run()
        except replicate.ReplicationError as exc:
            self.journal.log(migration_id, str(exc), level='error')
            self.journal.finish(migration_id, 'failed', str(exc))
            raise MigrationFailed(str(exc), migration_id)
        self.journal.log(migration_id, 'network world replicated')
        self.journal.finish(migration_id, 'network-ready')
        return rows + self._server_rows('network ready'), migration_id

    def _server_rows(self, status):
        return [replicate.Row('server', s.name, s.id, 'migrate', '', status)
                for s in self.plan.servers]
