"""The one destination pipeline: what ``migrate``, ``migration resume`` and
the Receiver all run once a migration has its journal entry.

1. **Already migrated**: a server whose ACTIVE copy (tagged with its
   source ID) runs at the destination from an earlier run is marked done,
   never moved again.
2. **Prechecks** against the destination, unless the caller ran them
   before it journaled anything (``migrate`` does, so that a refused plan
   leaves no record).
3. **Replication** of the network world
   (:class:`overcloud_migrate.plan.replicate.Replicator`).
4. **One flow per server**, built from the plan's server record by
   :func:`server_context` (the only place a
   :class:`~overcloud_migrate.workflow.tasks.ServerContext` is made) and run
   by :func:`overcloud_migrate.workflow.engine.run_servers`.
5. **Finish**: the journal's migration state says how it ended.

Volumes and warm migration add their steps to the per-server flow, which
is built from the server record alone, so every caller gets them.  A warm
migration's sync round (``Job.warm == 'sync'``) runs steps 3 (its first
round only) and a round of :mod:`overcloud_migrate.workflow.warm` per
server instead of step 4, and leaves the migration ``synced``; its
cut-over (``'cutover'``) is steps 1-5 with the cut-over flow.
"""

import contextlib
import dataclasses
import typing

from openstack import exceptions as sdk_exc

from overcloud_migrate import exceptions
from overcloud_migrate import journal as journal_mod
from overcloud_migrate.plan import prechecks
from overcloud_migrate.plan import replicate
from overcloud_migrate.workflow import engine
from overcloud_migrate.workflow import tasks
from overcloud_migrate.workflow import volumes
from overcloud_migrate.workflow import warm


class PrecheckFailed(exceptions.OvercloudMigrateError):
    """Prechecks found problems; ``problems`` lists them all."""

    def __init__(self, problems):
        self.problems = problems
        super().__init__('%d precheck%s failed; nothing was changed:\n%s' % (
            len(problems), '' if len(problems) == 1 else 's',
            prechecks.format_table(problems)))

    def summary(self):
        """The problems on one line (for a journal or a status file)."""
        return '%d precheck%s failed; nothing was created: %s' % (
            len(self.problems), '' if len(self.problems) == 1 else 's',
            '; '.join('%s %s: %s' % (p.type, p.name or p.source_id,
                                     p.problem) for p in self.problems))


class MigrationFailed(exceptions.OvercloudMigrateError):
    """The run failed after it started; the journal holds the record."""

    def __init__(self, reason, migration_id):
        self.reason = reason
        self.migration_id = migration_id
        super().__init__('%s (migration %s; see `openstack overcloud '
                         'migration show %s`)' % (reason, migration_id,
                                                  migration_id))


@dataclasses.dataclass
class Settings:
    """How each server moves."""
    stop: bool = True
    restart_on_failure: bool = True
    delete_source: bool = False
    #: keep the snapshot images the migration made in the source Glance
    keep_source_snapshots: bool = False
    timeout: int = 600
    parallel: int = 1
    floating_ip_mode: str = 'keep'
    progress: typing.Callable = None
    #: label -> callback(done, total), or None (not a terminal)
    progress_bar: typing.Callable = None
    #: cold volumes move through the transport's reach of the Cinder
    #: shares (see tasks.ServerContext.volume_shares)
    volume_shares: bool = False
    #: warm: image-booted servers boot from a synced root volume
    dest_boot_volume: bool = False


@dataclasses.dataclass
class Job:
    """One migration's way to the destination (or to a handoff directory).

    ``dest`` is None for ``migrate --handoff``; ``source`` is None in the
    Receiver, which moves each server from its handoff item (``items``:
    server id -> :class:`overcloud_migrate.handoff.Item`).
    """
    migration_id: str
    plan: object                # plan.model.Plan
    journal: journal_mod.Journal
    source_key: str
    dest_key: str
    dest: object = None         # openstacksdk connection
    admin: bool = False
    source: object = None
    transport: object = None
    settings: Settings = dataclasses.field(default_factory=Settings)
    items: dict = dataclasses.field(default_factory=dict)
    handoff: bool = False
    #: False: the network world only (--network-only)
    servers: bool = True
    #: the caller ran the prechecks before it journaled the migration
    prechecked: bool = False
    #: rebuild the network world even when every server is already at the
    #: destination (migrate reports every resource; a Receiver item whose
    #: server already runs there is simply done)
    network_when_migrated: bool = True
    #: held around prechecks and replication (Receiver items share networks)
    lock: typing.ContextManager = dataclasses.field(
        default_factory=contextlib.nullcontext)
    #: warm migration: 'sync' (a round) or 'cutover'; None: cold
    warm: str = None
    #: the IDs of the servers to work on (None: all of the plan's)
    only: typing.Optional[tuple] = None
    #: a sync round also rebuilds the network world (the first one does)
    network: bool = True

    @property
    def end_state(self):
        return journal_mod.HANDED_OFF if self.handoff else journal_mod.DONE


@dataclasses.dataclass
class Result:
    #: replicate.Row of each resource of the network world
    resources: list
    #: the journal's ServerRun rows, in plan order
    servers: list
    #: server id -> destination server id, for those moved by an earlier run
    migrated: dict
    failed: int = 0


def server_context(job, server, ids):
    """The ServerContext of ``server`` (the plan's server record)."""
    settings = job.settings
    return tasks.ServerContext(
        migration_id=job.migration_id, server=server, plan=job.plan,
        source=job.source, dest=job.dest, journal=job.journal,
        transport=job.transport, ids=ids, stop=settings.stop,
        restart_on_failure=settings.restart_on_failure,
        delete_source=settings.delete_source,
        keep_source_snapshots=settings.keep_source_snapshots,
        timeout=settings.timeout,
        progress=settings.progress, progress_bar=settings.progress_bar,
        handoff=job.handoff, item=job.items.get(server.id), warm=job.warm,
        volume_shares=settings.volume_shares,
        dest_boot_volume=settings.dest_boot_volume)


def already_migrated(dest, server):
    """The ACTIVE destination copy of ``server`` from any earlier run."""
    for found in tasks.tagged_servers(dest, server.id):
        if found.status == 'ACTIVE':
            return found
    return None


def _left(job):
    """The plan's servers this migration has not finished yet."""
    return [s for s in job.plan.servers
            if (job.only is None or s.id in job.only)
            and job.journal.server(job.migration_id, s.id).state
            != job.end_state]


def _mark_migrated(job, todo):
    """Mark the servers of ``todo`` an earlier run moved; returns
    {server id: destination id} of those."""
    journal, migration_id = job.journal, job.migration_id
    if journal.get(migration_id).state == journal_mod.ABORTING:
        return {}
    found = {}
    for server in todo:
        existing = already_migrated(job.dest, server)
        if existing is None:
            continue
        journal.update_server(migration_id, server.id, state=journal_mod.DONE,
                              dest_id=existing.id, error=None)
        journal.log(migration_id, "server '%s' was already migrated (%s)"
                    % (server.name, existing.id))
        found[server.id] = existing.id
        if job.warm or job.settings.volume_shares:
            warm.forget(server_context(job, server, {}))
        elif server.volumes:
            # A run killed after the boot: what its volumes' copy left
            # (snapshots, temporary volumes, images; the Receiver: its
            # destination images) goes now.
            volumes.clean_temporaries(server_context(job, server, {}),
                                      [a.volume_id for a in server.volumes])
    return found


def _fail(job, reason):
    job.journal.log(job.migration_id, reason, level='error')
    job.journal.finish(job.migration_id, journal_mod.FAILED, reason)


def run(job):
    """Take ``job`` to its destination: steps 1-5 of this module.

    Raises :class:`PrecheckFailed` or :class:`MigrationFailed` (the
    journal says failed); a server that fails only counts in
    ``Result.failed``.
    """
    if job.warm == warm.SYNC:
        return _sync_round(job)
    if job.warm == warm.CUTOVER:
        job.journal.set_state(job.migration_id, journal_mod.RUNNING,
                              step=warm.CUTOVER)
    resources, ids, migrated = [], {}, {}
    todo = _left(job)
    if not job.handoff:
        if job.servers:
            migrated = _mark_migrated(job, todo)
            todo = [s for s in todo if s.id not in migrated]
        if todo or job.network_when_migrated or not job.servers:
            resources, ids = _network(job, migrated)
        if not job.servers:
            job.journal.finish(job.migration_id, journal_mod.NETWORK_READY)
            return Result(resources, [], migrated)
    return _run_servers(job, todo, ids, resources, migrated)


def _network(job, migrated):
    """Steps 2 and 3; returns (rows, ids)."""
    journal = job.journal
    with job.lock:
        if not job.prechecked:
            problems = prechecks.Prechecks(
                job.plan, job.dest, journal, job.source_key, job.dest_key,
                job.admin, source=job.source, migrated=list(migrated)).run()
            if problems:
                failure = PrecheckFailed(problems)
                journal.finish(job.migration_id, journal_mod.FAILED,
                               failure.summary())
                raise failure
        journal.log(job.migration_id, 'replicating the network world of %d '
                    'servers' % len(job.plan.servers))
        replicator = replicate.Replicator(
            job.plan, job.dest, journal, job.source_key, job.dest_key,
            migration_id=job.migration_id, admin=job.admin,
            floating_ip_mode=job.settings.floating_ip_mode,
            progress=job.settings.progress)
        try:
            rows = replicator.run()
        except replicate.ReplicationError as exc:
            _fail(job, str(exc))
            raise MigrationFailed(str(exc), job.migration_id)
    return rows, replicator.ids


def _run_servers(job, todo, ids, resources, migrated):
    """Steps 4 and 5."""
    contexts = [server_context(job, server, ids) for server in todo]
    if contexts:
        engine.run_servers(contexts, job.journal.url, job.migration_id,
                           parallel=job.settings.parallel)
    records = job.journal.servers(job.migration_id)
    if job.source is not None and not job.handoff \
            and not job.settings.keep_source_snapshots:
        _sweep_source_snapshots(job, records)
    failed = [r for r in records if r.state != job.end_state
              and (job.only is None or r.source_id in job.only)]
    state = journal_mod.FAILED if failed else job.end_state
    if not failed and any(r.state == journal_mod.SYNCED for r in records):
        state = journal_mod.SYNCED     # a cut-over of some servers only
    job.journal.finish(job.migration_id, state,
                       '; '.join(r.error or r.state for r in failed) or None)
    return Result(resources, records, migrated, len(failed))


def _sync_round(job):
    """A warm migration's sync round: the network world first (the first
    round), then a round of every server not yet cut over."""
    journal, migration_id = job.journal, job.migration_id
    journal.set_state(migration_id, journal_mod.RUNNING, step=warm.SYNC)
    todo = _left(job)
    resources, ids = [], {}
    if job.network:
        resources, ids = _network(job, {})
    warm.run_round([server_context(job, server, ids) for server in todo],
                   parallel=job.settings.parallel)
    records = journal.servers(migration_id)
    failed = [r for r in records if r.state == journal_mod.FAILED]
    journal.finish(migration_id,
                   journal_mod.FAILED if failed else journal_mod.SYNCED,
                   '; '.join(r.error or r.state for r in failed) or None)
    return Result(resources, records, {}, len(failed))


def _sweep_source_snapshots(job, records):
    """Delete the source snapshots of every done server.

    A server found already ACTIVE at the destination (a resume after a kill
    past its boot) skips its flow and so its clean-source step; this sweep
    covers it.  A failure here is logged, never fatal: the servers moved.
    """
    try:
        tasks.delete_source_snapshots(
            job.source, job.migration_id,
            [r.source_id for r in records if r.state == journal_mod.DONE])
    except sdk_exc.SDKException as exc:
        job.journal.log(job.migration_id, 'snapshots left in the source '
                        'Glance: %s' % str(exc).splitlines()[0], 'warning')
