"""Warm migration: keep a server's volumes in step while it runs, then cut
over moving only what changed.

A **sync round** (``migrate --warm``, ``migration sync``) leaves the source
server running.  For each server it

``check-source``
    reads the source server and compares it with what it was at the first
    round (launch time, flavor, image, attached volumes): a server deleted,
    resized or rebuilt since stops the migration with a sentence naming the
    change (``migration rollback`` then cleans the destination; the source
    is never touched);
``volume-prepare``
    finds or makes each volume's destination copy, empty at first, of the
    mapped type, detached (a source volume with Cinder snapshots is
    refused: on a file share its data then live in a chain of files);
``sync``
    has the transport bring each destination copy in step with the source
    volume as it is now (:meth:`~overcloud_migrate.transports.base.
    Transport.sync_volume`: the first round sends every non-zero block,
    later rounds only the blocks that changed; the guest may write while it
    reads, the next round catches those blocks).

The **cut-over** (``migration cutover``, ``migrate --warm --cutover``) is a
TaskFlow flow of its own, journaled and resumable like a cold move: check
the source again, stop it, one last round (only what changed since the
previous round crosses, so the downtime follows the change, not the disk),
boot from the destination volumes on the replicated ports, verify, and
drop the sync state the transport kept.  A failed cut-over deletes the
server it booted and restarts the source; the synced volumes stay for the
next attempt.

Rounds are journaled (:class:`overcloud_migrate.journal.SyncRound`):
``migration show`` tells their age, bytes and an estimate of the cut-over's
copy time from them.
"""

import concurrent.futures
import json
import time

from openstack import exceptions as sdk_exc
from taskflow.patterns import linear_flow

from overcloud_migrate import journal as journal_mod
from overcloud_migrate.plan import prechecks
from overcloud_migrate.transports import base as transport_base
from overcloud_migrate.workflow import images as image_tasks
from overcloud_migrate.workflow import tasks
from overcloud_migrate.workflow import volumes

SYNC = 'sync'
CUTOVER = 'cutover'
#: the phase of a round while the server runs, and of the cut-over's round
SYNC_PHASE = 'sync'
FINAL_PHASE = 'final-sync'
#: a server may be in these states during a sync round
RUNNABLE = ('ACTIVE', 'SHUTOFF', 'PAUSED', 'SUSPENDED')


def sync_key(migration_id, volume_id):
    """The name both DTNs keep a volume's signatures under."""
    return 'om-%s-%s' % (migration_id, volume_id)


def problems(plan, transport, check=True, dest_boot_volume=False):
    """Why this plan cannot be migrated warm with ``transport`` (a list of
    :class:`~overcloud_migrate.plan.prechecks.Problem`, empty when it can);
    ``check``: also ask the transport whether it can, as configured;
    ``dest_boot_volume``: image-booted servers get a root volume."""
    found = []
    roots = dest_boot_volume and any(s.boot_source != 'volume'
                                     for s in plan.servers)
    if 'deltas' not in transport.capabilities:
        found.append(prechecks.Problem(
            'transport', transport.name, '',
            'the %s transport cannot move deltas; warm migration needs one '
            'that can: %s' % (transport.name,
                              ', '.join(transport_base.delta_transports())
                              or 'none installed')))
    elif check:
        try:
            transport.check_deltas(images=roots)
        except transport_base.TransportError as exc:
            found.append(prechecks.Problem('transport', transport.name, '',
                                           str(exc)))
    for server in plan.servers:
        if not server.volumes and not (dest_boot_volume
                                       and server.boot_source != 'volume'):
            found.append(prechecks.Problem(
                'server', server.name, server.id,
                'has no Cinder volume: a warm migration keeps volumes in '
                'step while the server runs, so this one would move cold '
                'at the cut-over anyway; migrate it without --warm, or give '
                '--dest-boot-volume to sync its root disk into a volume'))
    return found


# -- the source server between rounds ---------------------------------------

def _name_of(value):
    if value is None:
        return None
    if isinstance(value, str):
        return value
    get = value.get if hasattr(value, 'get') else (
        lambda key: getattr(value, key, None))
    return get('original_name') or get('name') or get('id')


def fingerprint(server):
    """What a server is, for telling a resize or rebuild between rounds."""
    image = server.image
    image_id = image.get('id') if hasattr(image, 'get') else image
    return {'launched_at': server.launched_at,
            'flavor': _name_of(server.flavor),
            'image': image_id or None,
            'volumes': sorted(v['id'] if hasattr(v, 'get') else v.id
                              for v in server.attached_volumes or [])}


def describe_change(old, new):
    """A sentence fragment naming what changed, or None."""
    if old == new:
        return None
    if old['flavor'] != new['flavor']:
        return 'was resized (flavor %s, now %s)' % (old['flavor'],
                                                    new['flavor'])
    if old['image'] != new['image'] or old['launched_at'] != \
            new['launched_at']:
        return 'was rebuilt (launched at %s, now at %s)' % (
            old['launched_at'], new['launched_at'])
    if old['volumes'] != new['volumes']:
        gone = sorted(set(old['volumes']) - set(new['volumes']))
        added = sorted(set(new['volumes']) - set(old['volumes']))
        return 'had its volumes changed (%s)' % ', '.join(
            ['detached %s' % v for v in gone]
            + ['attached %s' % v for v in added])
    return None


class CheckSource(tasks.Phase):
    """The source server is the one the earlier rounds copied."""

    phase = 'check-source'

    def run(self):
        ctx = self.ctx
        try:
            server = ctx.source.compute.get_server(ctx.server.id)
        except sdk_exc.NotFoundException:
            raise tasks.MigrationError(
                "Server '%s' (%s) was deleted at the source during warm "
                'migration %s; it stops here: `openstack overcloud migration '
                'rollback %s` deletes what it made at the destination.'
                % (ctx.server.name, ctx.server.id, ctx.migration_id,
                   ctx.migration_id))
        now = fingerprint(server)
        record = ctx.journal.server(ctx.migration_id, ctx.server.id)
        if record.source_fingerprint:
            change = describe_change(json.loads(record.source_fingerprint),
                                     now)
        else:
            planned = sorted(a.volume_id for a in ctx.server.volumes)
            change = describe_change(dict(now, volumes=planned), now)
            if change is None:
                ctx.journal.update_server(
                    ctx.migration_id, ctx.server.id,
                    source_fingerprint=json.dumps(now, sort_keys=True))
        if change:
            raise tasks.MigrationError(
                "Server '%s' (%s) %s since warm migration %s began; it stops "
                'here: `openstack overcloud migration rollback %s` deletes '
                'what it made at the destination (the source is untouched), '
                'then migrate the server again.' % (
                    ctx.server.name, ctx.server.id, change, ctx.migration_id,
                    ctx.migration_id))
        if ctx.warm == SYNC and server.status not in RUNNABLE:
            raise tasks.MigrationError(
                "Server '%s' (%s) is %s at the source; a sync round reads "
                'only a server that is %s.' % (
                    ctx.server.name, ctx.server.id, server.status,
                    ', '.join(RUNNABLE)))
        if record.source_was_running is None:
            ctx.journal.update_server(
                ctx.migration_id, ctx.server.id,
                source_was_running=server.status == 'ACTIVE')


class PrepareVolume(volumes.VolumePhase):
    """The volume's destination copy, detached (made empty at first)."""

    phase = 'volume-prepare'
    provides_kind = 'volume_dest'

    def run(self):
        ctx = self.ctx
        self.source_volume()
        snapshots = [s.id for s in ctx.source.block_storage.snapshots(
            volume_id=self.volume_id) if s.volume_id == self.volume_id]
        if snapshots:
            self.refuse(
                'has %d snapshot%s at the source (%s): on a file share its '
                'data then live in a chain of files that a sync does not '
                'read; delete them, or migrate it %s.' % (
                    len(snapshots), '' if len(snapshots) == 1 else 's',
                    ', '.join(snapshots),
                    'without --warm' if ctx.warm else
                    'without --dtn-source-volumes and --dtn-dest-volumes '
                    '(through the Cinder and Glance APIs)'))
        return self.detached_copy()

    def detached_copy(self):
        """The ID of the empty or synced destination copy, refused unless
        it is detached."""
        dest_id = self.ensure_copy(None)
        copy = self.ctx.dest.block_storage.get_volume(dest_id)
        if copy.status != 'available':
            self.refuse('cannot be synced: its destination copy %s is %s, '
                        'and a sync writes only into a detached volume.'
                        % (dest_id, copy.status))
        return dest_id

    def revert(self, *args, **kwargs):
        if self.ctx.warm is None:
            # a cold move that failed: its copy goes with it
            volumes.revert_copies(self.ctx, [self.volume_id])
        # warm: kept for the next round; `migration rollback` deletes it


class SyncVolume(volumes.VolumePhase):
    """One round: the destination copy in step with the source volume."""

    need_kinds = ('volume_dest',)

    def __init__(self, context, volume_id):
        self.phase = FINAL_PHASE if context.warm == CUTOVER else SYNC_PHASE
        super().__init__(context, volume_id)

    def run(self, volume_dest):
        self.source_volume()
        return self.sync_round(volume_dest, '', lambda key, progress: (
            self.ctx.transport.sync_volume(self.volume_id, volume_dest, key,
                                           progress)))

    def sync_round(self, volume_dest, source, call):
        """Say the round (``source``: what it reads, as words to add),
        run ``call(key, progress)`` of the transport, journal the result;
        the copy's ID."""
        ctx = self.ctx
        self.say_volume('%s round%s: only changed blocks cross' % (
            'the last' if ctx.warm == CUTOVER else 'a sync', source))
        try:
            result = call(sync_key(ctx.migration_id, self.volume_id),
                          self.progress())
        except transport_base.TransportError as exc:
            self.fail('Syncing ' + self.label, exc)
        return self.journal_round(result, volume_dest)

    def progress(self):
        ctx = self.ctx
        if ctx.progress_bar:
            return ctx.progress_bar(self.volume.name or self.volume_id)
        return lambda done, total: None

    def journal_round(self, result, volume_dest):
        """Journal a finished round; says its figures; the copy's ID."""
        ctx = self.ctx
        ctx.journal.add_round(
            ctx.migration_id, ctx.server.id, self.volume_id, result.round,
            cutover=ctx.warm == CUTOVER, size=result.size,
            bytes=result.bytes, changed_bytes=result.changed_bytes,
            repaired_bytes=result.repaired_bytes, seconds=result.seconds,
            finished_at=time.time())
        ctx.journal.update_volume(ctx.migration_id, self.volume_id,
                                  dest_id=volume_dest, bytes=result.bytes,
                                  transfer_seconds=result.seconds)
        self.say_volume('round %d: %.1f MB changed, %.1f MB sent%s in '
                        '%.1f s' % (result.round, result.changed_bytes / 1e6,
                                    result.bytes / 1e6,
                                    ', %.1f MB repaired' % (
                                        result.repaired_bytes / 1e6)
                                    if result.repaired_bytes else '',
                                    result.seconds))
        return volume_dest

    def revert(self, *args, **kwargs):
        pass    # a later round converges; nothing to undo


# -- an image-booted server's root disk into a volume (--dest-boot-volume) --

class PrepareRoot(PrepareVolume):
    """The root disk's destination volume (empty at first), detached."""

    def __init__(self, context):
        super().__init__(context, volumes.root_copy_key(context))
        self.volume = volumes.root_volume(context)

    def run(self):
        return self.detached_copy()


class SnapshotRoot(tasks.Phase):
    """A Nova snapshot of the server's root disk (of the running server
    during a round: crash consistent; of the stopped one at the cut-over),
    an earlier round's dropped first."""

    phase = 'root-snapshot'
    default_provides = 'root_snapshot_id'

    def run(self):
        ctx = self.ctx
        source = ctx.source
        tasks.delete_source_snapshots(source, ctx.migration_id,
                                      [ctx.server.id])
        self.say('snapshotting the root disk%s' % (
            '' if ctx.warm == CUTOVER else ' (running: crash consistent)'))
        try:
            image = source.compute.create_server_image(
                ctx.server.id, 'om-%s-%s' % (ctx.server.name,
                                             ctx.migration_id[:8]),
                metadata={tasks.PROP_MIGRATION: ctx.migration_id,
                          tasks.PROP_SOURCE_SERVER: ctx.server.id},
                wait=False)
            image = source.image.wait_for_status(
                source.image.get_image(image.id), 'active',
                failures=['killed', 'deleted'], wait=ctx.timeout,
                interval=tasks.POLL_INTERVAL)
        except sdk_exc.SDKException as exc:
            self.fail('Snapshotting the root disk', exc)
        return image.id

    def revert(self, *args, **kwargs):
        tasks.delete_source_snapshots(self.ctx.source, self.ctx.migration_id,
                                      [self.ctx.server.id])


class _RootRound(SyncVolume):
    """A round of the root disk's destination volume (its plan record made
    up from the server: the root is no Cinder volume at the source)."""

    def __init__(self, context):
        super().__init__(context, volumes.root_copy_key(context))
        self.volume = volumes.root_volume(context)


class SyncRoot(_RootRound):
    """One round: the root disk's volume in step with the snapshot."""

    needs = ('root_snapshot_id',)

    def run(self, volume_dest, root_snapshot_id):
        return self.sync_round(
            volume_dest, ' from snapshot %s' % root_snapshot_id,
            lambda key, progress: self.ctx.transport.sync_image(
                root_snapshot_id, volume_dest, key, progress))


class SyncDisk(_RootRound):
    """One round: the root disk's volume in step with the server's disk
    file in the source instance store, read by the transport (running
    during a round, stopped at the cut-over); no snapshot is made."""

    def run(self, volume_dest):
        ctx = self.ctx
        try:
            host = ctx.source.compute.get_server(ctx.server.id).compute_host
        except sdk_exc.SDKException as exc:
            self.fail('Finding the compute host of the root disk', exc)
        return self.sync_round(
            volume_dest, ' from the disk on %s' % (host or 'its host'),
            lambda key, progress: ctx.transport.sync_disk(
                ctx.server.id, host, volume_dest, key, progress))


class ForgetSyncs(tasks.Phase):
    """After verify: the transport drops the rounds' signatures."""

    phase = 'forget-syncs'
    needs = ('dest_server_id',)

    def run(self, dest_server_id):
        forget(self.ctx)


def forget(ctx):
    """Drop the sync state of ``ctx.server``'s volumes (warnings only)."""
    root = volumes.root_copy_key(ctx)
    for volume_id in ([root] if root else []) + [
            a.volume_id for a in ctx.server.volumes]:
        try:
            ctx.transport.forget_sync(sync_key(ctx.migration_id, volume_id))
        except transport_base.TransportError as exc:
            ctx.journal.log(ctx.migration_id, str(exc), 'warning')


def round_tasks(ctx):
    """The tasks of one sync round of ``ctx.server``, in order."""
    return [CheckSource(ctx)] + share_tasks(ctx)


def share_tasks(ctx):
    """A cold migration's volumes through the shares (after the stop),
    and a sync round's: each copy found or made empty, then a round (the
    first: every non-zero block)."""
    return prepare_tasks(ctx) + sync_tasks(ctx)


def prepare_tasks(ctx):
    """Each volume's destination copy (and the root disk's), found or
    made."""
    found = [PrepareRoot(ctx)] if volumes.root_copy_key(ctx) else []
    return found + [PrepareVolume(ctx, a.volume_id)
                    for a in ctx.server.volumes]


def sync_tasks(ctx):
    """A round of each volume (and of the root disk: from its file in the
    instance store where the transport reads it, else from a snapshot)."""
    found = []
    if volumes.root_copy_key(ctx):
        found = [SyncDisk(ctx)] if ctx.transport.reads_disks() else \
            [SnapshotRoot(ctx), SyncRoot(ctx)]
    return found + [SyncVolume(ctx, a.volume_id)
                    for a in ctx.server.volumes]


def cutover_flow(ctx):
    """The cut-over of one server (a TaskFlow flow)."""
    flow = linear_flow.Flow('cutover-%s' % ctx.server.id)
    # The copies exist since the first round: finding them again is done
    # while the server still runs, outside the downtime.
    flow.add(CheckSource(ctx), *prepare_tasks(ctx))
    flow.add(tasks.StopSource(ctx))
    if ctx.server.boot_source != 'volume' and \
            not volumes.root_copy_key(ctx):
        # The root disk is not a volume: it moves cold, as a snapshot.
        flow.add(tasks.Snapshot(ctx), image_tasks.TransferImage(ctx))
    flow.add(*sync_tasks(ctx))
    flow.add(tasks.BootServer(ctx), tasks.Verify(ctx),
             volumes.VerifyVolumes(ctx), ForgetSyncs(ctx))
    if not ctx.keep_source_snapshots and ctx.server.boot_source != 'volume':
        flow.add(tasks.CleanSourceSnapshots(ctx))
    if ctx.delete_source:
        flow.add(tasks.DeleteSource(ctx))
    return flow


def _run_round(ctx):
    """One server's round, its tasks run in order; None or the error."""
    results = {}
    try:
        for step in round_tasks(ctx):
            out = step.execute(**{name: results[name]
                                  for name in step.requires})
            for name in step.provides:
                results[name] = out
    except Exception as exc:  # recorded; the other servers go on
        message = str(exc).splitlines()[0] if str(exc) else repr(exc)
        ctx.journal.update_server(ctx.migration_id, ctx.server.id,
                                  state=journal_mod.FAILED, error=message)
        ctx.journal.log(ctx.migration_id, "server '%s': %s"
                        % (ctx.server.name, message), 'error')
        return message
    if volumes.root_copy_key(ctx):
        # the round's snapshot of the root disk has served
        try:
            tasks.delete_source_snapshots(ctx.source, ctx.migration_id,
                                          [ctx.server.id])
        except sdk_exc.SDKException as exc:
            ctx.journal.log(ctx.migration_id, 'a snapshot of server %r '
                            'left in the source Glance: %s' % (
                                ctx.server.name, str(exc).splitlines()[0]),
                            'warning')
    ctx.journal.update_server(ctx.migration_id, ctx.server.id,
                              state=journal_mod.SYNCED, error=None)
    ctx.journal.log(ctx.migration_id, "server '%s' synced" % ctx.server.name)
    return None


def run_round(contexts, parallel=1):
    """A sync round of every server of ``contexts``, ``parallel`` at a
    time; returns {server id: None or the error}."""
    for ctx in contexts:
        ctx.journal.update_server(ctx.migration_id, ctx.server.id,
                                  state=journal_mod.RUNNING, error=None)
    with concurrent.futures.ThreadPoolExecutor(max(1, parallel)) as pool:
        return dict(zip([c.server.id for c in contexts],
                        pool.map(_run_round, contexts)))


# -- what migration show tells of the rounds ---------------------------------

def summary(journal, migration_id, server_id, now=None):
    """The sync figures of one server: rounds, the last one's age, bytes
    sent and changed, and the estimated copy time of a cut-over (the last
    round of each volume, one after another: the change since then is
    about the change it moved, if the interval is alike); {} if it never
    synced."""
    rounds = [r for r in journal.rounds(migration_id)
              if r.server_id == server_id]
    if not rounds:
        return {}
    last = {}
    for row in rounds:
        last[row.volume_id] = row
    now = time.time() if now is None else now
    finished = max(r.finished_at or 0 for r in last.values())
    return {
        'sync_rounds': max(r.round for r in rounds),
        'last_sync_age': round(now - finished, 1),
        'last_sync_bytes': sum(r.bytes or 0 for r in last.values()),
        'last_changed_bytes': sum(r.changed_bytes or 0
                                  for r in last.values()),
        'cutover_copy_estimate': round(sum(r.seconds or 0
                                           for r in last.values()), 1),
    }
