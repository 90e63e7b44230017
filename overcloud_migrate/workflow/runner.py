"""One migration: prechecks, the network world, then the servers.

Plain logic used by ``openstack overcloud migrate`` and ``openstack
overcloud migration resume|rollback``; no CLI here.
"""

import dataclasses
import json
import time

from openstack import exceptions as sdk_exc

from overcloud_migrate import handoff
from overcloud_migrate import journal as journal_mod
from overcloud_migrate.plan import model
from overcloud_migrate.plan import prechecks
from overcloud_migrate.plan import replicate
from overcloud_migrate.transports import base as transport_base
from overcloud_migrate.workflow import pipeline
from overcloud_migrate.workflow import tasks
from overcloud_migrate.workflow import volumes as volumes_mod
from overcloud_migrate.workflow import warm as warm_mod

PrecheckFailed = pipeline.PrecheckFailed
MigrationFailed = pipeline.MigrationFailed


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
    #: --warm: sync rounds while the servers run, then (--cutover) the
    #: cut-over
    warm: bool = False
    sync_rounds: int = 1
    sync_interval: float = 0.0
    cutover: bool = False
    #: --dest-boot-volume: image-booted servers boot from a synced volume
    dest_boot_volume: bool = False

    def to_dict(self):
        return dataclasses.asdict(self)


def is_admin(connection):
    """True when the connection's token carries the admin role."""
    access = connection.session.auth.get_access(connection.session)
    return 'admin' in (access.role_names or [])


@dataclasses.dataclass
class Outcome:
    """What a run did: one record (a dict) per resource and per server.

    A resource record has the keys of :class:`replicate.Row`; a server
    record those of :func:`server_record`.  The CLI turns them into rows
    by column name.
    """

    records: list
    migration_id: str = None
    failed: int = 0
    total: int = 0
    #: the warm step this run was (``warm.SYNC``, ``warm.CUTOVER``), if any
    warm: str = None


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
        # Servers already at the destination need no room on their host
        # and no room for their volumes.
        if (self.plan.dest_hosts() and self.admin) or self.plan.volumes:
            migrated = [s.id for s in self.plan.servers
                        if self.already_migrated(s) is not None]
        problems = prechecks.Prechecks(
            self.plan, self.dest, self.journal, self.source_key,
            self.dest_key, self.admin, source=self.source,
            migrated=migrated,
            copies_at_source=not (self.options.warm or (
                transport is not None and transport.reaches_volumes()))).run()
        if transport is not None:
            reached = True
            try:
                transport.check(size=sum(i.size or 0
                                         for i in self.plan.images) or None)
            except transport_base.TransportError as exc:
                reached = False     # said once, not again below
                problems.append(prechecks.Problem(
                    'transport', transport.name, '', str(exc)))
            if self.options.warm:
                problems += warm_mod.problems(
                    self.plan, transport, check=reached,
                    dest_boot_volume=self.options.dest_boot_volume)
            elif reached and self.plan.volumes and \
                    transport.reaches_volumes():
                try:
                    transport.check_deltas()
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
            records = [r.as_dict() for r in self._replicator().run()]
            for server in self.plan.servers:
                records.append(planned_record(server, 'migrate'))
                records += [planned_volume_record(v, server)
                            for v in self.plan.volumes_of(server)]
            return Outcome(records, None, 0, len(self.plan.servers))
        migration_id = self._start_journal()
        if self.plan.order:
            for number, wave in enumerate(self.plan.waves(), 1):
                self.journal.log(migration_id, 'wave %d: %s' % (
                    number, ', '.join(self.plan.by_id('servers', sid).name
                                      for sid in wave)))
        if self.options.warm and self.options.servers:
            return self._warm(migration_id, transport)
        return self._continue(migration_id, transport)

    def resume(self, migration_id):
        """Finish a migration that was interrupted: nothing is redone."""
        record = self.journal.get(migration_id)
        if self.options.warm and record.step != warm_mod.CUTOVER:
            if record.step == warm_mod.SYNC:
                self.journal.log(migration_id, 'resumed (sync round)')
                return self.sync(migration_id)
            raise MigrationFailed(
                'Migration %s is %s between its sync rounds: nothing was '
                'interrupted; run `openstack overcloud migration sync %s` '
                'for another round or `openstack overcloud migration '
                'cutover %s`' % (migration_id, record.state, migration_id,
                                 migration_id), migration_id)
        transport = self.transport() if self.options.servers else None
        if transport is not None:
            transport.check(size=sum(i.size or 0
                                     for i in self.plan.images) or None)
        if record.state != journal_mod.ABORTING:
            self.journal.set_state(migration_id, journal_mod.RUNNING)
        self.journal.log(migration_id, 'resumed')
        if record.step == warm_mod.CUTOVER:
            return self._continue(migration_id, transport,
                                  warm=warm_mod.CUTOVER)
        return self._continue(migration_id, transport)

    # -- warm migration ---------------------------------------------------

    def _warm(self, migration_id, transport):
        """``migrate --warm``: the first round builds the network world;
        --sync-rounds more, --sync-interval apart; then --cutover."""
        rounds = max(1, self.options.sync_rounds or 1)
        for number in range(rounds):
            if number:
                self.progress('sync round %d of %d in %.0f s'
                              % (number + 1, rounds,
                                 self.options.sync_interval))
                time.sleep(self.options.sync_interval)
            outcome = self._continue(migration_id, transport,
                                     warm=warm_mod.SYNC, network=not number)
            if outcome.failed:
                return outcome
        if self.options.cutover:
            outcome = self._continue(migration_id, transport,
                                     warm=warm_mod.CUTOVER)
        return outcome

    def _warm_ready(self, migration_id, servers, cutover):
        """The plan IDs of ``servers`` (names or IDs; None: all) of a warm
        migration that can take another round or its cut-over."""
        record = self.journal.get(migration_id)
        if not self.options.warm:
            raise MigrationFailed('Migration %s is a cold migration: it has '
                                  'no sync rounds and no cut-over'
                                  % migration_id, migration_id)
        if record.state in journal_mod.FINISHED:
            raise MigrationFailed('Migration %s is %s: nothing is left to %s'
                                  % (migration_id, record.state,
                                     'cut over' if cutover else 'sync'),
                                  migration_id)
        only = None
        if servers:
            only = []
            for wanted in servers:
                found = [s for s in self.plan.servers
                         if wanted in (s.id, s.name)]
                if not found:
                    raise MigrationFailed(
                        "Migration %s has no server '%s' (it has: %s)" % (
                            migration_id, wanted, ', '.join(
                                s.name for s in self.plan.servers)),
                        migration_id)
                only += [s.id for s in found]
        if cutover:
            synced = {r.server_id for r in self.journal.rounds(migration_id)}
            never = [s.name for s in self.plan.servers
                     if (only is None or s.id in only)
                     and s.id not in synced and self.journal.server(
                         migration_id, s.id).state != journal_mod.DONE]
            if never:
                raise MigrationFailed(
                    'Migration %s cannot cut over: server%s %s never '
                    'finished a sync round; run `openstack overcloud '
                    'migration sync %s` first' % (
                        migration_id, '' if len(never) == 1 else 's',
                        ', '.join("'%s'" % n for n in never), migration_id),
                    migration_id)
        return tuple(only) if only is not None else None

    def sync(self, migration_id, servers=None):
        """Another sync round of a warm migration (the source runs)."""
        only = self._warm_ready(migration_id, servers, cutover=False)
        transport = self.transport()
        first = not self.journal.rounds(migration_id)
        return self._continue(migration_id, transport, warm=warm_mod.SYNC,
                              network=first, only=only)

    def cutover(self, migration_id, servers=None):
        """Stop, a last round, boot at the destination, verify."""
        only = self._warm_ready(migration_id, servers, cutover=True)
        transport = self.transport()
        self.journal.log(migration_id, 'cut-over')
        return self._continue(migration_id, transport, warm=warm_mod.CUTOVER,
                              only=only)

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
        # the source side of the volumes' copy (the Receiver checks the
        # destination's room)
        problems.source_volume_quota()
        if problems.problems:
            raise PrecheckFailed(problems.problems)
        if self.options.dry_run:
            return Outcome([planned_record(s, 'handoff',
                                           self.options.handoff)
                            for s in self.plan.servers], None, 0,
                           len(self.plan.servers))
        migration_id = self._start_journal()
        return self._continue(migration_id, transport)

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

    def _job(self, migration_id, transport, **warm):
        options = self.options
        return pipeline.Job(**warm,
            migration_id=migration_id, plan=self.plan, journal=self.journal,
            source_key=self.source_key, dest_key=self.dest_key,
            dest=self.dest, admin=self.admin, source=self.source,
            transport=transport, handoff=bool(options.handoff),
            servers=options.servers, prechecked=True,
            settings=pipeline.Settings(
                stop=options.stop,
                restart_on_failure=options.restart_on_failure,
                delete_source=options.delete_source,
                keep_source_snapshots=options.keep_source_snapshots,
                timeout=options.timeout, parallel=options.parallel,
                floating_ip_mode=options.floating_ip_mode,
                volume_shares=bool(transport is not None
                                   and not options.warm
                                   and transport.reaches_volumes()),
                dest_boot_volume=options.warm and options.dest_boot_volume,
                progress=self.progress, progress_bar=self.progress_bar))

    def _continue(self, migration_id, transport, **warm):
        """Run the destination pipeline; its result as records.
        ``warm``: the :class:`~overcloud_migrate.workflow.pipeline.Job`
        fields of a warm migration's step (warm, only, network)."""
        result = pipeline.run(self._job(migration_id, transport, **warm))
        records = [r.as_dict() for r in result.resources]
        if self.options.handoff:
            records += [server_record(
                r, action='handoff',
                dest_id=handoff.item_name(migration_id, r.source_id))
                for r in result.servers]
        else:
            volumes = {}
            for run in self.journal.volumes(migration_id):
                volumes.setdefault(run.server_id, []).append(run)
            for run in result.servers:
                records.append(server_record(run, self.plan))
                records += [volume_record(v, self.plan)
                            for v in volumes.get(run.source_id, ())]
        return Outcome(records, migration_id, result.failed,
                       len(result.servers), warm=warm.get('warm'))

    def already_migrated(self, server):
        """The ACTIVE destination copy of ``server`` from any earlier run."""
        return pipeline.already_migrated(self.dest, server)


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


def planned_record(server, action, dest_id=''):
    """The record of a server a dry run would move (see server_record)."""
    return {'type': 'server', 'name': server.name, 'source_id': server.id,
            'action': action, 'dest_id': dest_id, 'status': 'planned',
            'bytes': None, 'rate': None, 'downtime': None,
            'dest_host': server.dest_host or '', 'phases': {}}


def planned_volume_record(volume, server):
    """The record of a volume a dry run would move (see volume_record)."""
    return {'type': 'volume', 'name': volume.name or volume.id,
            'source_id': volume.id, 'action': 'migrate', 'dest_id': '',
            'status': 'planned (server %s, %d GiB%s)' % (
                server.name, volume.size,
                ', %s' % volume.volume_type if volume.volume_type else ''),
            'bytes': None, 'rate': None, 'downtime': None, 'dest_host': '',
            'phases': {}}


def volume_record(record, plan=None):
    """The record of one volume's copy: ``bytes`` are the image bytes
    that crossed (zero clusters dropped), ``rate`` MB/s over the
    transfer, ``phases`` the seconds of each volume phase."""
    volume = plan.by_id('volumes', record.source_id) if plan else None
    rate = None
    if record.bytes and record.transfer_seconds:
        rate = round(record.bytes / 1e6 / record.transfer_seconds, 1)
    return {'type': 'volume',
            'name': (volume.name or volume.id) if volume else record.name
            or record.source_id,
            'source_id': record.source_id, 'action': 'migrate',
            'dest_id': record.dest_id or '',
            'status': 'created' if record.dest_id else 'pending',
            'bytes': record.bytes or None, 'rate': rate, 'downtime': None,
            'dest_host': '', 'phases': json.loads(record.phases or '{}')}


def server_record(record, plan=None, action='migrate', dest_id=None):
    """The record of one server's run (a dict).

    ``record`` is the journal's row for it; ``plan`` gives its destination
    host; ``dest_id`` (default: the destination server) is what the run
    made of it (``migrate --handoff``: the item's name).  ``bytes`` is an
    int or None, ``rate`` MB/s and ``downtime`` seconds are floats or None,
    ``phases`` maps each phase to its seconds in the order they happened.
    """
    server = plan.by_id('servers', record.source_id) if plan else None
    downtime = None
    if record.stopped_at and record.active_at:
        downtime = round(record.active_at - record.stopped_at, 1)
    rate = None
    if record.bytes and record.transfer_seconds:
        rate = round(record.bytes / 1e6 / record.transfer_seconds, 1)
    status = record.state
    if record.error:
        status = '%s: %s' % (record.state, record.error)
    return {'type': 'server', 'name': record.name,
            'source_id': record.source_id, 'action': action,
            'dest_id': dest_id if dest_id is not None else
            record.dest_id or '',
            'status': status, 'bytes': record.bytes or None, 'rate': rate,
            'downtime': downtime,
            'dest_host': (server.dest_host if server else None) or '',
            'phases': json.loads(record.phases or '{}')}


def load_plan(record):
    return model.Plan.from_dict(json.loads(record.plan))


def rollback(record, source, dest, journal, timeout=600, progress=None,
             transport=None):
    """Undo a migration at the destination and restart its source servers.

    Deletes what the migration created (servers, images, then the network
    resources of its ID map, in dependency order) and starts every source
    server that was running before it; ``transport`` (a warm migration's)
    drops the sync state it kept.  ``dest`` is None for a ``migrate
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
            dest.compute.wait_for_delete(server, wait=timeout,
                                         interval=tasks.POLL_INTERVAL)
            deleted += 1
    for conn in (dest, source):
        if conn is None:    # migrate --handoff: the receiver owns the rest
            continue
        for image in tasks.marked_images(conn, migration_id):
            conn.image.delete_image(image, ignore_missing=True)
            deleted += 1
    deleted += _rollback_volumes(migration_id, source, dest, timeout, say)
    if transport is not None:
        # A warm migration: the DTNs' signatures of its volumes go too.
        for run in journal.volumes(migration_id):
            try:
                transport.forget_sync(warm_mod.sync_key(migration_id,
                                                        run.source_id))
            except transport_base.TransportError as exc:
                journal.log(migration_id, str(exc), 'warning')
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
                server = None   # deleted at the source: nothing to start
            if server is not None and server.status == 'SHUTOFF':
                say("restarting source server '%s'" % run.name)
                source.compute.start_server(server)
                source.compute.wait_for_server(server, status='ACTIVE',
                                               failures=['ERROR'],
                                               wait=timeout,
                                               interval=tasks.POLL_INTERVAL)
        # every server's part is undone, the source's start aside
        journal.update_server(migration_id, run.source_id,
                              state=journal_mod.ROLLED_BACK,
                              stopped_by_us=False)
    journal.finish(migration_id, journal_mod.ROLLED_BACK)
    journal.log(migration_id, 'rolled back: %d resources deleted' % deleted)
    return deleted


def _rollback_volumes(migration_id, source, dest, timeout, say):
    """The destination volumes, and every source snapshot, temporary
    volume and image, this migration made (markers checked here)."""
    deleted = 0
    if dest is not None:
        for volume in volumes_mod.marked_volumes(
                dest, migration_id,
                **{volumes_mod.PROP_ROLE: volumes_mod.ROLE_COPY}):
            say("deleting destination volume '%s'" % (volume.name
                                                      or volume.id))
            volumes_mod.delete_volume(dest, volume, timeout)
            deleted += 1
    if source is not None:
        for image in volumes_mod.source_images(source, migration_id):
            source.image.delete_image(image, ignore_missing=True)
            deleted += 1
        for volume in volumes_mod.marked_volumes(
                source, migration_id,
                **{volumes_mod.PROP_ROLE: volumes_mod.ROLE_TEMPORARY}):
            volumes_mod.delete_volume(source, volume, timeout)
            deleted += 1
        for snapshot in volumes_mod.marked_snapshots(
                source, migration_id,
                **{volumes_mod.PROP_ROLE: volumes_mod.ROLE_SNAPSHOT}):
            volumes_mod.delete_snapshot(source, snapshot, timeout)
            deleted += 1
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
