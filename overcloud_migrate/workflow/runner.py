"""One migration: prechecks, the network world, then the servers.

Plain logic used by ``openstack overcloud migrate`` and ``openstack
overcloud migration resume|rollback``; no CLI here.
"""

import dataclasses
import json

from openstack import exceptions as sdk_exc

from overcloud_migrate.plan import handoff
from overcloud_migrate.plan import model
from overcloud_migrate.plan import prechecks
from overcloud_migrate.plan import replicate
from overcloud_migrate.transports import base as transport_base
from overcloud_migrate.workflow import engine
from overcloud_migrate.workflow import tasks

# Output columns: the resource columns of replication, plus what a server
# row reports ('Destination Host': the host a server is pinned to).
COLUMNS = replicate.COLUMNS + ('Bytes', 'MB/s', 'Downtime (s)',
                               'Destination Host', 'Phases')
# Blank server columns of a resource row.
_BLANK = ('',) * (len(COLUMNS) - len(replicate.COLUMNS))


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
    transport: str = 'glance'
    transport_options: dict = dataclasses.field(default_factory=dict)
    stop: bool = True
    restart_on_failure: bool = True
    delete_source: bool = False
    #: keep the snapshots in the source Glance after a verified move
    keep_source_snapshots: bool = False
    parallel: int = 1
    timeout: int = 600
    servers: bool = True      # False: the network world only
    #: --handoff DIR: leave items in DIR for the Receiver (no destination)
    handoff: str = None

    def to_dict(self):
        return dataclasses.asdict(self)


def is_admin(connection):
    """True when the connection's token carries the admin role."""
    access = connection.session.auth.get_access(connection.session)
    return 'admin' in (access.role_names or [])


@dataclasses.dataclass
class Outcome:
    rows: list
    migration_id: str = None
    failed: int = 0
    total: int = 0


class Run:

    def __init__(self, plan, source, dest, source_identity, dest_identity,
                 journal, options, progress=None, dest_names=None,
                 progress_bar=None):
        self.plan = plan
        self.source = source
        self.dest = dest
        self.source_identity = source_identity
        self.source_key = source_identity.key()
        self.dest_key = dest_identity.key()
        self.journal = journal
        self.options = options
        self.progress = progress or (lambda message: None)
        self.progress_bar = progress_bar
        self.admin = is_admin(dest) if dest is not None else False
        self.dest_names = dest_names or {}

    def transport(self):
        return transport_base.load(self.options.transport,
                                   **self.options.transport_options)

    def check(self, transport=None):
        migrated = ()
        if self.plan.dest_hosts() and self.admin:
            migrated = [s.id for s in self.plan.servers
                        if self.already_migrated(s) is not None]
        problems = prechecks.Prechecks(
            self.plan, self.dest, self.journal, self.source_key,
            self.dest_key, self.admin, source=self.source,
            migrated=migrated).run()
        if transport is not None:
            try:
                transport.check(size=sum(i.size or 0
                                         for i in self.plan.images) or None)
            except transport_base.TransportError as exc:
                problems.append(prechecks.Problem(
                    'transport', transport.name, '', str(exc)))
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
        """Check, then migrate (or only say what would be done)."""
        if self.options.handoff:
            return self.handoff()
        transport = self.transport() if self.options.servers else None
        self.check(transport)
        if self.options.dry_run:
            rows = [r.as_tuple() + _BLANK
                    for r in self._replicator().run()]
            rows += [('server', s.name, s.id, 'migrate', '', 'planned',
                      '', '', '', s.dest_host or '', {})
                     for s in self.plan.servers]
            return Outcome(rows, None, 0, len(self.plan.servers))
        migration_id = self._start_journal()
        if self.plan.order:
            for number, wave in enumerate(self.plan.waves(), 1):
                self.journal.log(migration_id, 'wave %d: %s' % (
                    number, ', '.join(self.plan.by_id('servers', sid).name
                                      for sid in wave)))
        return self._continue(migration_id, transport)

    def resume(self, migration_id):
        """Finish a migration that was interrupted: nothing is redone."""
        transport = self.transport() if self.options.servers else None
        if transport is not None:
            transport.check(size=sum(i.size or 0
                                     for i in self.plan.images) or None)
        if self.journal.get(migration_id).state != 'aborting':
            self.journal.set_state(migration_id, 'running')
        self.journal.log(migration_id, 'resumed')
        if self.options.handoff:
            return self._handoff(migration_id, transport)
        return self._continue(migration_id, transport)

    # -- migrate --handoff ------------------------------------------------

    def handoff(self):
        """Stop, snapshot and hand each server off to the transport's
        directory as an item for the Receiver; no destination session."""
        transport = self.transport()
        if 'handoff' not in transport.capabilities:
            raise transport_base.PreflightError(
                'The %s transport cannot reach a handoff directory; use one '
                'of: %s.' % (transport.name, ', '.join(handoff_transports())
                             or 'none'))
        transport.check(size=sum(i.size or 0 for i in self.plan.images)
                        or None)
        problems = prechecks.Prechecks(
            self.plan, None, self.journal, self.source_key, self.dest_key,
            False, source=self.source)
        problems.servers()
        if problems.problems:
            raise PrecheckFailed(problems.problems)
        if self.options.dry_run:
            return Outcome([('server', s.name, s.id, 'handoff',
                             self.options.handoff, 'planned', '', '', '', {})
                            for s in self.plan.servers], None, 0,
                           len(self.plan.servers))
        migration_id = self._start_journal()
        return self._handoff(migration_id, transport)

    def _start_journal(self):
        """A new journal entry for this plan, its servers in plan order."""
        migration_id = self.journal.start(
            self.source_key, self.dest_key, self.plan.to_dict(),
            source_cloud=self.source_identity.name,
            options=self.options.to_dict(), **self.dest_names)
        for position, server in enumerate(self.plan.servers):
            self.journal.add_server(migration_id, server.id, server.name,
                                    position)
        return migration_id

    def _handoff(self, migration_id, transport):
        todo = [s for s in self.plan.servers
                if self.journal.server(migration_id, s.id).state
                != 'handed-off']
        contexts = [tasks.ServerContext(
            migration_id=migration_id, server=server, plan=self.plan,
            source=self.source, dest=None, journal=self.journal,
            transport=transport, ids={}, stop=self.options.stop,
            restart_on_failure=self.options.restart_on_failure,
            timeout=self.options.timeout, progress=self.progress,
            progress_bar=self.progress_bar, handoff=True)
            for server in todo]
        if contexts:
            engine.run_servers(contexts, self.journal.url, migration_id,
                               parallel=self.options.parallel)
        records = self.journal.servers(migration_id)
        failed = [r for r in records if r.state != 'handed-off']
        rows = []
        for record in records:
            row = list(server_row(record))
            row[3] = 'handoff'
            row[4] = handoff.item_name(migration_id, record.source_id)
            rows.append(tuple(row))
        self.journal.finish(migration_id,
                            'failed' if failed else 'handed-off',
                            '; '.join(r.error or r.state for r in failed)
                            or None)
        return Outcome(rows, migration_id, len(failed), len(records))

    def _continue(self, migration_id, transport):
        self.journal.log(migration_id, 'replicating the network world of %d '
                         'servers' % len(self.plan.servers))
        replicator = self._replicator(migration_id)
        try:
            network_rows = replicator.run()
        except replicate.ReplicationError as exc:
            self.journal.log(migration_id, str(exc), level='error')
            self.journal.finish(migration_id, 'failed', str(exc))
            raise MigrationFailed(str(exc), migration_id)
        rows = [r.as_tuple() + _BLANK for r in network_rows]
        if not self.options.servers:
            self.journal.finish(migration_id, 'network-ready')
            return Outcome(rows, migration_id, 0, 0)
        todo = []
        aborting = self.journal.get(migration_id).state == 'aborting'
        for server in self.plan.servers:
            if self.journal.server(migration_id, server.id).state == 'done':
                continue
            existing = None if aborting else self.already_migrated(server)
            if existing is not None:
                # An earlier migration moved it: nothing to do, say so.
                self.journal.update_server(migration_id, server.id,
                                           state='done', dest_id=existing.id,
                                           error=None)
                self.journal.log(migration_id, "server '%s' was already "
                                 'migrated (%s)' % (server.name, existing.id))
                continue
            todo.append(server)
        contexts = [tasks.ServerContext(
            migration_id=migration_id, server=server, plan=self.plan,
            source=self.source, dest=self.dest, journal=self.journal,
            transport=transport, ids=replicator.ids, stop=self.options.stop,
            restart_on_failure=self.options.restart_on_failure,
            delete_source=self.options.delete_source,
            keep_source_snapshots=self.options.keep_source_snapshots,
            timeout=self.options.timeout, progress=self.progress,
            progress_bar=self.progress_bar)
            for server in todo]
        if contexts:
            engine.run_servers(contexts, self.journal.url, migration_id,
                               parallel=self.options.parallel)
        records = self.journal.servers(migration_id)
        if not self.options.keep_source_snapshots:
            # A server found already ACTIVE at the destination (a resume
            # after a kill past its boot) skips its flow and so its
            # clean-source step: sweep the snapshots of every done server.
            try:
                tasks.delete_source_snapshots(
                    self.source, migration_id,
                    [r.source_id for r in records if r.state == 'done'])
            except sdk_exc.SDKException as exc:
                self.journal.log(migration_id, 'snapshots left in the source '
                                 'Glance: %s' % str(exc).splitlines()[0],
                                 'warning')
        failed = [r for r in records if r.state != 'done']
        rows += [server_row(r, self.plan) for r in records]
        state = 'failed' if failed else 'done'
        self.journal.finish(migration_id, state,
                            '; '.join(r.error or r.state for r in failed)
                            or None)
        return Outcome(rows, migration_id, len(failed), len(records))


    def already_migrated(self, server):
        """The ACTIVE destination copy of ``server`` from any earlier run."""
        for found in tasks.tagged_servers(self.dest, server.id):
            if found.status == 'ACTIVE':
                return found
        return None


def handoff_transports():
    """Names of the installed transports that can hand items off."""
    found = []
    for name in transport_base.names():
        try:
            if 'handoff' in transport_base.load(name).capabilities:
                found.append(name)
        except Exception:  # a broken driver is simply not offered
            continue
    return found


def server_row(record, plan=None):
    """The output row of one server (see COLUMNS); ``plan`` gives its
    destination host."""
    server = plan.by_id('servers', record.source_id) if plan else None
    downtime = ''
    if record.stopped_at and record.active_at:
        downtime = round(record.active_at - record.stopped_at, 1)
    rate = ''
    if record.bytes and record.transfer_seconds:
        rate = round(record.bytes / 1e6 / record.transfer_seconds, 1)
    status = record.state
    if record.error:
        status = '%s: %s' % (record.state, record.error)
    return ('server', record.name, record.source_id, 'migrate',
            record.dest_id or '', status, record.bytes or '', rate, downtime,
            (server.dest_host if server else None) or '',
            json.loads(record.phases or '{}'))


def load_plan(record):
    return model.Plan.from_dict(json.loads(record.plan))


def rollback(record, source, dest, journal, timeout=600, progress=None):
    """Undo a migration at the destination and restart its source servers.

    Deletes what the migration created (servers, images, then the network
    resources of its ID map, in dependency order) and starts every source
    server that was running before it.  ``dest`` is None for a ``migrate
    --handoff`` migration: then only its snapshots are deleted (the items
    it left, and what a receiver made of them, are not touched).  Returns
    the number of resources deleted.  Safe to run again.
    """
    say = progress or (lambda message: None)
    migration_id = record.id
    deleted = 0
    for run in journal.servers(migration_id) if dest is not None else ():
        for server in tasks.tagged_servers(dest, run.source_id):
            say("deleting destination server '%s'" % server.name)
            dest.compute.delete_server(server)
            dest.compute.wait_for_delete(server, wait=timeout)
            deleted += 1
    for conn in (dest, source):
        if conn is None:    # migrate --handoff: the receiver owns the rest
            continue
        for image in tasks.marked_images(conn, migration_id):
            conn.image.delete_image(image, ignore_missing=True)
            deleted += 1
    # An empty destination ID is a create that never reached the journal
    # (the next migrate or resume adopts what it made); nothing to delete
    # by ID.
    mappings = [m for m in journal.mappings(migration_id)
                if m.created and m.dest_id]
    order = ('floating_ip', 'port', 'router', 'subnet', 'network',
             'security_group', 'keypair', 'flavor')
    # Groups that refer to each other: drop those rules before the groups.
    for mapping in mappings:
        if mapping.resource_type == 'security_group':
            for rule in dest.network.security_group_rules(
                    security_group_id=mapping.dest_id):
                if rule.remote_group_id:
                    dest.network.delete_security_group_rule(
                        rule, ignore_missing=True)
    for kind in order:
        for mapping in [m for m in mappings if m.resource_type == kind]:
            try:
                _delete(dest, kind, mapping.dest_id)
                deleted += 1
            except sdk_exc.NotFoundException:
                pass
            journal.forget(mapping.source, mapping.destination, kind,
                           mapping.source_id)
    for run in journal.servers(migration_id):
        if run.source_was_running:
            try:
                server = source.compute.get_server(run.source_id)
            except sdk_exc.NotFoundException:
                continue
            if server.status == 'SHUTOFF':
                say("restarting source server '%s'" % run.name)
                source.compute.start_server(server)
                source.compute.wait_for_server(server, status='ACTIVE',
                                               failures=['ERROR'],
                                               wait=timeout)
            journal.update_server(migration_id, run.source_id,
                                  state='rolled-back', stopped_by_us=False)
    journal.finish(migration_id, 'rolled-back')
    journal.log(migration_id, 'rolled back: %d resources deleted' % deleted)
    return deleted


def _delete(dest, kind, dest_id):
    net = dest.network
    if kind == 'floating_ip':
        net.delete_ip(dest_id, ignore_missing=False)
    elif kind == 'port':
        net.delete_port(dest_id, ignore_missing=False)
    elif kind == 'router':
        router = net.get_router(dest_id)
        if router.routes:
            net.update_router(router, routes=[])
        for port in net.ports(device_id=router.id,
                              device_owner='network:router_interface'):
            net.remove_interface_from_router(router, port_id=port.id)
        net.delete_router(router, ignore_missing=False)
    elif kind == 'subnet':
        net.delete_subnet(dest_id, ignore_missing=False)
    elif kind == 'network':
        for port in net.ports(network_id=dest_id):
            net.delete_port(port)
        net.delete_network(dest_id, ignore_missing=False)
    elif kind == 'security_group':
        net.delete_security_group(dest_id, ignore_missing=False)
    elif kind == 'keypair':
        dest.compute.delete_keypair(dest_id, ignore_missing=False)
    elif kind == 'flavor':
        dest.compute.delete_flavor(dest_id, ignore_missing=False)
