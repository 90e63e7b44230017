"""The TaskFlow tasks that move one server, each idempotent and revertible.

Every task finds its own earlier effect before acting (a snapshot by its
image properties, the destination image by its properties, the destination
server by its tag), so re-running a task after a crash never duplicates a
resource.  Reverting undoes what the task made and restarts the source
server the flow stopped.

The tasks that carry the image (transfer, handoff, upload) are in
:mod:`overcloud_migrate.workflow.images`, those of volumes in
:mod:`overcloud_migrate.workflow.volumes`; both build on :class:`Phase`.
``migrate --handoff`` (stop, snapshot, hand the item off to a directory) at
the source and the Receiver (upload the item's image from its file, boot,
verify) at the destination use the same tasks.

Test hook: ``OVERCLOUD_MIGRATE_FAULT`` may hold ``kill:before:<task>`` or
``kill:after:<task>`` (the process dies with exit status 137 at that point,
as with kill -9; the tasks are stop, snapshot, transfer, handoff, upload,
boot, verify, clean-source, delete-source, the volume phases, and warm
migration's check-source, volume-prepare, root-snapshot, sync, final-sync
and forget-syncs) and ``transfer:corrupt`` (see transports.base).
"""

import dataclasses
import time

from openstack import exceptions as sdk_exc
from taskflow import task

from overcloud_migrate import exceptions
from overcloud_migrate import faults
from overcloud_migrate import journal as journal_mod
from overcloud_migrate.plan import replicate
from overcloud_migrate.transports import base as transport_base

FAULT_ENV = transport_base.FAULT_ENV
#: seconds between two looks at a server or image being waited for
#: (openstacksdk's default, 2, adds a second per wait on average; servers
#: and images on a quiet cloud change state within a second or two)
POLL_INTERVAL = 0.5
PROP_MIGRATION = 'om_migration'
PROP_SOURCE_SERVER = 'om_source_server'
PROP_SOURCE_IMAGE = 'om_source_image'
# Properties of the snapshot worth keeping on the destination image.
KEEP_PREFIXES = ('hw_', 'os_', 'img_', 'architecture', 'hypervisor_type',
                 'vm_mode', 'auto_disk_config', 'base_image_ref',
                 'image_location', 'instance_uuid', 'owner_id')


class MigrationError(exceptions.OvercloudMigrateError):
    """A server could not be moved; the message names it and the cause."""


class AbortRequested(MigrationError):
    pass


@dataclasses.dataclass
class ServerContext:
    """What the tasks of one server need; rebuilt on resume, never saved."""
    migration_id: str
    server: object          # plan.model.Server
    plan: object            # plan.model.Plan
    source: object          # openstacksdk connections
    dest: object
    journal: object
    transport: object
    ids: dict               # (kind, source id) -> destination id
    stop: bool = True
    restart_on_failure: bool = True
    delete_source: bool = False
    #: False: delete this server's snapshots at the source once verified
    keep_source_snapshots: bool = False
    timeout: int = 600
    progress: object = None
    # progress_bar(label) -> callback(done, total), or None (not a TTY)
    progress_bar: object = None
    #: migrate --handoff: the item is left in the transport's directory
    handoff: bool = False
    #: the Receiver: the handoff item (plan.handoff.Item) to upload from
    item: object = None
    #: warm migration: 'sync' (a round while the server runs) or 'cutover'
    warm: str = None
    #: a cold migration whose transport reaches the Cinder shares: each
    #: volume moves in one sync round after the stop (nothing made at the
    #: source) instead of through Cinder's and Glance's APIs
    volume_shares: bool = False
    #: warm migration of an image-booted server: its root disk becomes a
    #: volume at the destination, synced from snapshots of the server
    dest_boot_volume: bool = False


fault = faults.kill


class Phase(task.Task):
    """A step of a server's move, timed and journaled."""

    phase = None
    #: names of earlier results this phase takes (TaskFlow cannot read
    #: them from the generic execute() signature)
    needs = ()

    def __init__(self, context, **kwargs):
        super().__init__(name='%s:%s' % (self.phase, context.server.id),
                         requires=self.needs, **kwargs)
        self.ctx = context

    def execute(self, *args, **kwargs):
        ctx = self.ctx
        migration = ctx.journal.get(ctx.migration_id)
        if migration is not None and migration.state == journal_mod.ABORTING:
            raise AbortRequested('Migration %s was aborted before %s of '
                                 "server '%s'" % (ctx.migration_id,
                                                  self.phase,
                                                  ctx.server.name))
        fault('before:%s' % self.phase)
        started, start = time.time(), time.monotonic()
        result = self.run(*args, **kwargs)
        self.record(time.monotonic() - start, started)
        fault('after:%s' % self.phase)
        return result

    def run(self, *args, **kwargs):
        raise NotImplementedError

    def record(self, seconds, started):
        """Journal how long this phase took and when it began."""
        self.ctx.journal.update_server(self.ctx.migration_id,
                                       self.ctx.server.id, phase=self.phase,
                                       seconds=seconds, started=started)

    def say(self, message):
        if self.ctx.progress:
            self.ctx.progress("%s: %s" % (self.ctx.server.name, message))

    def fail(self, what, exc):
        reason = getattr(exc, 'details', None) or str(exc).splitlines()[0]
        raise MigrationError("%s of server '%s' (%s) failed: %s"
                             % (what, self.ctx.server.name,
                                self.ctx.server.id, reason))


class StopSource(Phase):
    """Stop the source server (unless --no-stop) for a consistent disk."""

    phase = 'stop'
    default_provides = 'stop_info'

    def run(self):
        ctx = self.ctx
        compute = ctx.source.compute
        record = ctx.journal.server(ctx.migration_id, ctx.server.id)
        try:
            server = compute.get_server(ctx.server.id)
        except sdk_exc.NotFoundException as exc:
            self.fail('Reading', exc)
        if record.source_was_running is None:
            # First sight only: after a crash mid-stop it is SHUTOFF by us.
            ctx.journal.update_server(
                ctx.migration_id, ctx.server.id, state=journal_mod.STOPPING,
                source_was_running=server.status == 'ACTIVE')
        if not ctx.stop:
            self.say('not stopped (--no-stop): the snapshot is only crash '
                     'consistent')
            ctx.journal.update_server(ctx.migration_id, ctx.server.id,
                                      stopped_at=record.stopped_at
                                      or time.time())
            return {'stopped': False}
        if server.status == 'ACTIVE':
            self.say('stopping the source server')
            ctx.journal.update_server(ctx.migration_id, ctx.server.id,
                                      stopped_by_us=True)
            try:
                compute.stop_server(server)
            except sdk_exc.ConflictException:
                pass  # already stopping
        try:
            compute.wait_for_server(server, status='SHUTOFF',
                                    failures=['ERROR'], wait=ctx.timeout,
                                    interval=POLL_INTERVAL)
        except sdk_exc.SDKException as exc:
            self.fail('Stopping', exc)
        if record.stopped_at is None:
            ctx.journal.update_server(ctx.migration_id, ctx.server.id,
                                      stopped_at=time.time())
        return {'stopped': True}

    def revert(self, *args, **kwargs):
        if self.ctx.restart_on_failure:
            restart_source(self.ctx)


def restart_source(ctx):
    """Start the source server again if this migration stopped it."""
    record = ctx.journal.server(ctx.migration_id, ctx.server.id)
    if record is None or not record.stopped_by_us:
        return
    compute = ctx.source.compute
    try:
        server = compute.get_server(ctx.server.id)
        if server.status == 'SHUTOFF':
            compute.start_server(server)
            compute.wait_for_server(server, status='ACTIVE',
                                    failures=['ERROR'], wait=ctx.timeout,
                                    interval=POLL_INTERVAL)
    except sdk_exc.SDKException:
        return  # the journal keeps stopped_by_us: rollback tries again
    ctx.journal.update_server(ctx.migration_id, ctx.server.id,
                              stopped_by_us=False)


def marked_images(conn, migration_id, **props):
    """Images carrying all these marker properties (checked here: the SDK
    drops unknown query filters, so a server-side filter cannot be trusted
    before a delete)."""
    wanted = {PROP_MIGRATION: migration_id}
    wanted.update(props)
    found = []
    for image in conn.image.images(owner=conn.current_project_id):
        props_of = dict(image.properties or {})
        if all(props_of.get(k) == v for k, v in wanted.items()):
            found.append(image)
    return found


class Snapshot(Phase):
    """Snapshot the source server through Nova and wait until active."""

    phase = 'snapshot'
    default_provides = 'snapshot_id'
    needs = ('stop_info',)

    def run(self, stop_info):
        ctx = self.ctx
        source = ctx.source
        found = marked_images(source, ctx.migration_id, **{
            PROP_SOURCE_SERVER: ctx.server.id})
        usable = [i for i in found if i.status in ('queued', 'saving',
                                                   'active')]
        for image in found:
            if image not in usable:
                source.image.delete_image(image, ignore_missing=True)
        if usable:
            image = usable[0]
        else:
            self.say('snapshotting')
            try:
                image = source.compute.create_server_image(
                    ctx.server.id, 'om-%s-%s' % (ctx.server.name,
                                                 ctx.migration_id[:8]),
                    metadata={PROP_MIGRATION: ctx.migration_id,
                              PROP_SOURCE_SERVER: ctx.server.id},
                    wait=False)
            except sdk_exc.SDKException as exc:
                self.fail('Snapshotting', exc)
        try:
            image = source.image.wait_for_status(
                source.image.get_image(image.id), 'active',
                failures=['killed', 'deleted'], wait=ctx.timeout,
                interval=POLL_INTERVAL)
        except sdk_exc.ResourceTimeout:
            raise MigrationError(
                "The snapshot %s of server '%s' did not become active within "
                '%d s' % (image.id, ctx.server.name, ctx.timeout))
        except sdk_exc.SDKException as exc:
            self.fail('Snapshotting', exc)
        return image.id

    def revert(self, *args, **kwargs):
        for image in marked_images(self.ctx.source, self.ctx.migration_id,
                                    **{PROP_SOURCE_SERVER:
                                       self.ctx.server.id}):
            self.ctx.source.image.delete_image(image, ignore_missing=True)


def tagged_servers(conn, source_id):
    """Destination servers tagged as copies of ``source_id`` (the tag is
    checked here too, before anything acts on the list)."""
    tag = replicate.source_tag(source_id)
    return [s for s in conn.compute.servers(tags=tag) if tag in (s.tags or [])]


def find_dest_server(ctx):
    servers = tagged_servers(ctx.dest, ctx.server.id)
    return servers[0] if servers else None


#: seconds between two reads of a booting server's status (openstacksdk's
#: default is 2 s: ACTIVE was noticed up to 2 s late, plus the read itself)
BUILD_POLL_INTERVAL = 1.0


def wait_until_built(compute, server, timeout, interval=None):
    """Wait until the destination server is ACTIVE; raise on ERROR or after
    ``timeout`` seconds.

    The status is read every ``interval`` s.  (Reading the create action's
    events instead, which spares Neutron the security-group lookup each
    GET /servers/{id} makes, noticed the end of a build later on a loaded
    bed: 8.6 s after launched_at against 3.8 s, see
    benchmarks/boot_time.py, since Nova records the event's end through
    the conductor after the server is ACTIVE.)
    """
    interval = BUILD_POLL_INTERVAL if interval is None else interval
    return compute.wait_for_server(server, status='ACTIVE',
                                   failures=['ERROR'], interval=interval,
                                   wait=timeout)


class BootServer(Phase):
    """Boot at the destination on the pre-created ports; wait for ACTIVE."""

    phase = 'boot'
    default_provides = 'dest_server_id'
    needs = ('dest_image_id',)

    def __init__(self, context, **kwargs):
        # A volume-backed server boots from its destination volume (no
        # image); every volume's copy is in its block device mapping.
        from overcloud_migrate.workflow import volumes
        root = volumes.root_copy_key(context)
        needs = [] if context.server.boot_source == 'volume' or root else [
            'dest_image_id']
        self.needs = tuple(needs + [
            volumes.result_name('volume_dest', volume_id)
            for volume_id in ([root] if root else [])
            + [a.volume_id for a in context.server.volumes]])
        super().__init__(context, **kwargs)

    def execute(self, **results):
        return super().execute(**results)

    def run(self, dest_image_id=None, **volume_results):
        from overcloud_migrate.workflow import volumes
        ctx = self.ctx
        compute = ctx.dest.compute
        server = find_dest_server(ctx)
        if server is None:
            self.say('booting at the destination')
            flavor = ctx.plan.by_id('flavors', ctx.server.flavor_id)
            attrs = {
                'name': ctx.server.name,
                'flavor_id': ctx.ids[('flavor', flavor.id)],
                'networks': [{'port': ctx.ids[('port', p)]}
                             for p in ctx.server.port_ids],
                'metadata': dict(ctx.server.metadata),
                'tags': [replicate.source_tag(ctx.server.id)],
            }
            if dest_image_id:
                attrs['image_id'] = dest_image_id
            if ctx.server.volumes or volumes.root_copy_key(ctx):
                attrs['block_device_mapping'] = volumes.block_device_mapping(
                    ctx, volume_results, dest_image_id)
            if ctx.server.key_name:
                attrs['key_name'] = ctx.server.key_name
            zone = ctx.server.availability_zone
            if zone:
                zone = ctx.plan.mappings.availability_zones.get(zone, zone)
                attrs['availability_zone'] = zone
            if ctx.server.description:
                attrs['description'] = ctx.server.description
            if ctx.server.dest_host:
                # Nova microversion 2.74 (admin): boot on this compute host;
                # the scheduler still checks that it has room.
                attrs['host'] = ctx.server.dest_host
                self.say('booting on destination host %s'
                         % ctx.server.dest_host)
            try:
                server = compute.create_server(**attrs)
            except sdk_exc.SDKException as exc:
                self.fail('Booting', exc)
        ctx.journal.update_server(ctx.migration_id, ctx.server.id,
                                  dest_id=server.id, state=journal_mod.BOOTING)
        try:
            server = wait_until_built(compute, server, ctx.timeout)
        except sdk_exc.SDKException as exc:
            self.fail('Booting', exc)
        record = ctx.journal.server(ctx.migration_id, ctx.server.id)
        if record.active_at is None:
            ctx.journal.update_server(ctx.migration_id, ctx.server.id,
                                      active_at=time.time())
        return server.id

    def revert(self, *args, **kwargs):
        server = find_dest_server(self.ctx)
        if server is not None:
            self.ctx.dest.compute.delete_server(server)
            self.ctx.dest.compute.wait_for_delete(server,
                                                  wait=self.ctx.timeout,
                                                  interval=POLL_INTERVAL)


class Verify(Phase):
    """The destination server is ACTIVE on the planned fixed IPs."""

    phase = 'verify'
    needs = ('dest_server_id',)

    def run(self, dest_server_id):
        ctx = self.ctx
        server = ctx.dest.compute.get_server(dest_server_id)
        have = sorted(a['addr'] for addrs in (server.addresses or {}).values()
                      for a in addrs if a.get('OS-EXT-IPS:type') != 'floating')
        want = sorted(f.ip_address for p in ctx.server.port_ids
                      for f in ctx.plan.by_id('ports', p).fixed_ips)
        if server.status != 'ACTIVE' or have != want:
            raise MigrationError(
                "Server '%s' at the destination is %s with addresses %s; "
                'expected ACTIVE with %s' % (ctx.server.name, server.status,
                                             have, want))
        if ctx.server.dest_host and server.compute_host and \
                server.compute_host != ctx.server.dest_host:
            raise MigrationError(
                "Server '%s' at the destination runs on host %s; the plan "
                'pins it to %s' % (ctx.server.name, server.compute_host,
                                   ctx.server.dest_host))
        ctx.journal.update_server(ctx.migration_id, ctx.server.id,
                                  state=journal_mod.VERIFIED)


class DeleteSource(Phase):
    """--delete-source: only after the destination server is verified."""

    phase = 'delete-source'
    needs = ('dest_server_id',)

    def run(self, dest_server_id):
        ctx = self.ctx
        self.say('deleting the source server (--delete-source)')
        try:
            ctx.source.compute.delete_server(ctx.server.id,
                                             ignore_missing=True)
        except sdk_exc.SDKException as exc:
            self.fail('Deleting the source', exc)


def delete_source_snapshots(conn, migration_id, source_server_ids=None):
    """Delete the snapshots ``migration_id`` made in the source Glance (only
    those of these source servers when ``source_server_ids`` is given);
    returns their IDs.

    Only images carrying this migration's markers are touched (checked
    client-side by :func:`marked_images`); deleting is idempotent.
    """
    wanted = None if source_server_ids is None else set(source_server_ids)
    deleted = []
    for image in marked_images(conn, migration_id):
        server = dict(image.properties or {}).get(PROP_SOURCE_SERVER)
        if wanted is not None and server not in wanted:
            continue
        conn.image.delete_image(image, ignore_missing=True)
        deleted.append(image.id)
    return deleted


class CleanSourceSnapshots(Phase):
    """After verify: delete this server's snapshots in the source Glance
    (not with --keep-source-snapshots): the verified copy at the
    destination is the one that counts now."""

    phase = 'clean-source'
    needs = ('dest_server_id',)

    def run(self, dest_server_id):
        ctx = self.ctx
        try:
            deleted = delete_source_snapshots(ctx.source, ctx.migration_id,
                                              [ctx.server.id])
        except sdk_exc.SDKException as exc:
            # The server has moved: a leftover snapshot is no reason to
            # revert it; say so and leave it for `migration rollback`.
            ctx.journal.log(ctx.migration_id, "snapshots of server '%s' "
                            'left in the source Glance: %s' % (
                                ctx.server.name, str(exc).splitlines()[0]),
                            'warning')
            return
        if deleted:
            self.say('deleted %d snapshot%s in the source Glance'
                     % (len(deleted), '' if len(deleted) == 1 else 's'))
