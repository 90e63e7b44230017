"""The TaskFlow tasks that move the Cinder volumes of one server.

Each volume of the stopped server goes the same way, through public APIs
only (the choice and its measurements: ``doc/source/user/volumes.rst``):

``volume-snapshot``
    an in-use volume is snapshotted (Cinder's in-use snapshot: ``force``
    before API 3.66; on NFS-like backends Nova assists); an available one
    needs no snapshot;
``volume-clone``
    a temporary source volume from that snapshot (an in-use volume cannot
    be uploaded unless the source enables ``enable_force_upload``);
``volume-upload``
    Cinder uploads the temporary volume (or the available source volume) to
    a source Glance image, ``disk_format`` qcow2: zero clusters are dropped,
    so zeros never cross the network as data;
``volume-transfer``
    the image moves with the migration's transport into a destination
    image, sha512 checked end to end as for server images;
``volume-create``
    the destination Cinder makes the volume from that image: same size,
    name, description, metadata and bootable flag, the mapped volume type
    and availability zone.

After the server boots (its volumes in its block device mapping),
``verify-volumes`` checks sizes, types, bootable flags and the order of the
attachments, and ``volume-cleanup`` deletes the destination images and
every temporary snapshot, volume and image at the source.

Everything made carries the migration's markers (Cinder metadata, image
properties) and is found again by them, filtered here on the client (the
SDK drops query filters it does not know, so a server-side filter could
return everything): re-running a task after a crash never duplicates a
resource, and a revert deletes only what this migration made.
"""

import json

from openstack import exceptions as sdk_exc
from taskflow import task

from overcloud_migrate.transports import base as transport_base
from overcloud_migrate.workflow import images as image_tasks
from overcloud_migrate.workflow import tasks

from overcloud_migrate.workflow.volume_marks import (  # noqa: F401
    DISK_FORMAT,
    PHASES,
    POLL,
    PROP_MIGRATION,
    PROP_ROLE,
    PROP_SOURCE_IMAGE,
    PROP_SOURCE_SERVER,
    PROP_SOURCE_VOLUME,
    ROLE_COPY,
    ROLE_SNAPSHOT,
    ROLE_TEMPORARY,
    TRANSIENT,
    VOLUME_FAILURES,
    _has,
    delete_images,
    delete_snapshot,
    delete_volume,
    dest_volume_type,
    dest_zone,
    image_name,
    marked_snapshots,
    root_copy_key,
    root_volume,
    GIB,
    marked_volumes,
    markers,
    result_name,
    source_images,
    wait_settled,
)

class VolumePhase(tasks.Phase):
    """A step of one volume's move, journaled on the volume's record and
    added to the server's phase of the same name."""

    #: (kind of result this task needs, ...); provided one: ``provides_kind``
    need_kinds = ()
    provides_kind = None

    def __init__(self, context, volume_id):
        self.volume_id = volume_id
        task.Task.__init__(
            self, name='%s:%s:%s' % (self.phase, context.server.id,
                                     volume_id),
            requires=[result_name(k, volume_id) for k in self.need_kinds]
            + list(self.needs),
            provides=(result_name(self.provides_kind, volume_id)
                      if self.provides_kind else None))
        self.ctx = context
        self.volume = context.plan.by_id('volumes', volume_id)

    def execute(self, **kwargs):
        # TaskFlow passes results by their storage names; hand them to run()
        # by kind (and the server-wide ones, ``needs``, by name).
        by_kind = {k: kwargs[result_name(k, self.volume_id)]
                   for k in self.need_kinds}
        by_kind.update((name, kwargs[name]) for name in self.needs)
        return super().execute(**by_kind)

    def record(self, seconds, started):
        ctx = self.ctx
        ctx.journal.update_volume(ctx.migration_id, self.volume_id,
                                  server_id=ctx.server.id, phase=self.phase,
                                  seconds=seconds)
        record = ctx.journal.server(ctx.migration_id, ctx.server.id)
        phases = json.loads(record.phases or '{}') if record else {}
        ctx.journal.update_server(
            ctx.migration_id, ctx.server.id, phase=self.phase,
            seconds=(phases.get(self.phase) or 0.0) + seconds,
            started=started)

    @property
    def label(self):
        return "volume '%s' (%s) of server '%s'" % (
            self.volume.name or self.volume.id, self.volume.id,
            self.ctx.server.name)

    def refuse(self, text):
        raise tasks.MigrationError('%s %s' % (self.label[0].upper()
                                              + self.label[1:], text))

    def source_volume(self):
        """The source volume now; refuses one in an error status."""
        try:
            volume = self.ctx.source.block_storage.get_volume(self.volume_id)
        except sdk_exc.NotFoundException:
            self.refuse('no longer exists at the source; nothing of it was '
                        'moved.')
        if volume.status.startswith('error'):
            self.refuse('is %s at the source, so it cannot be copied '
                        'consistently; fix it there (its data are as they '
                        'were) and run the migration again.' % volume.status)
        return volume

    def say_volume(self, message):
        self.say('%s: %s' % (self.volume.name or self.volume.id, message))

    def wait(self, conn, kind, item, status='available'):
        storage = conn.block_storage
        try:
            return storage.wait_for_status(
                getattr(storage, 'get_%s' % kind)(item.id), status,
                failures=VOLUME_FAILURES, interval=POLL,
                wait=self.ctx.timeout)
        except sdk_exc.ResourceTimeout:
            self.refuse('is not done: its %s %s did not become %s within '
                        '%d s.' % (kind, item.id, status, self.ctx.timeout))
        except sdk_exc.ResourceFailure as exc:
            self.refuse('could not be copied: %s' % exc)


    def ensure_copy(self, image_id=None):
        """The destination copy of the volume (found by its markers, or
        made: from ``image_id``, or empty when None), settled, with the
        source's bootable flag; journaled.  Returns its ID."""
        ctx = self.ctx
        conn = ctx.dest
        volume = self.volume
        wanted = markers(ctx.migration_id, self.volume_id, ROLE_COPY)
        found = marked_volumes(conn, ctx.migration_id, **wanted)
        usable = [v for v in found if not v.status.startswith('error')
                  and v.status != 'deleting']
        for other in found:
            if other not in usable:
                delete_volume(conn, other, ctx.timeout)
        for extra in usable[1:]:
            delete_volume(conn, extra, ctx.timeout)
        if usable:
            made = usable[0]
        else:
            attrs = {'size': volume.size, 'name': volume.name or None,
                     'description': volume.description or None,
                     'metadata': dict(volume.metadata, **wanted)}
            if image_id:
                attrs['image_id'] = image_id
            volume_type = dest_volume_type(ctx.plan, volume)
            if volume_type:
                attrs['volume_type'] = volume_type
            zone = dest_zone(ctx.plan, volume)
            if zone:
                attrs['availability_zone'] = zone
            self.say_volume('creating the destination volume (%d GiB%s%s)'
                            % (volume.size, ', type %s' % volume_type
                               if volume_type else '',
                               '' if image_id else ', empty'))
            try:
                made = conn.block_storage.create_volume(**attrs)
            except sdk_exc.SDKException as exc:
                self.fail('Creating the destination copy of ' + self.label,
                          exc)
        made = wait_settled(conn, 'volume', made, ctx.timeout)
        if made.status not in ('available', 'in-use'):
            made = self.wait(conn, 'volume', made)
        if made.status == 'available' and \
                bool(made.is_bootable) != bool(volume.bootable):
            try:
                conn.block_storage.set_volume_bootable_status(
                    made, volume.bootable)
            except sdk_exc.SDKException as exc:
                self.fail('Setting the bootable flag of the copy of '
                          + self.label, exc)
        ctx.journal.update_volume(ctx.migration_id, self.volume_id,
                                  server_id=ctx.server.id, dest_id=made.id,
                                  name=volume.name or '')
        return made.id


class SnapshotVolume(VolumePhase):
    """A snapshot of an in-use volume (None for an available one)."""

    phase = 'volume-snapshot'
    provides_kind = 'volume_snapshot'

    def run(self):
        ctx = self.ctx
        conn = ctx.source
        volume = self.source_volume()
        wanted = markers(ctx.migration_id, self.volume_id, ROLE_SNAPSHOT)
        found = marked_snapshots(conn, ctx.migration_id, **wanted)
        usable = [s for s in found if s.status in ('creating', 'available')]
        for snapshot in found:
            if snapshot not in usable:
                delete_snapshot(conn, snapshot, ctx.timeout)
        if usable:
            snapshot = usable[0]
        elif volume.status == 'available':
            return None
        else:
            self.say_volume('snapshotting (in use)')
            try:
                # force: an in-use snapshot before API 3.66 (the SDK's
                # snapshot speaks 3.65); Cinder asks Nova to help where
                # the backend needs it (NFS).
                snapshot = conn.block_storage.create_snapshot(
                    volume_id=self.volume_id, is_forced=True,
                    name='om-%s-%s' % (self.volume.name or self.volume_id,
                                       ctx.migration_id[:8]),
                    description='overcloud-migrate: consistent copy for '
                                'migration %s' % ctx.migration_id,
                    metadata=wanted)
            except sdk_exc.SDKException as exc:
                self.fail('Snapshotting ' + self.label, exc)
        return self.wait(conn, 'snapshot', snapshot).id

    def revert(self, *args, **kwargs):
        ctx = self.ctx
        for snapshot in marked_snapshots(ctx.source, ctx.migration_id, **{
                PROP_SOURCE_VOLUME: self.volume_id,
                PROP_ROLE: ROLE_SNAPSHOT}):
            delete_snapshot(ctx.source, snapshot, ctx.timeout)


class CloneVolume(VolumePhase):
    """A temporary source volume from the snapshot (None: no snapshot)."""

    phase = 'volume-clone'
    need_kinds = ('volume_snapshot',)
    provides_kind = 'volume_clone'

    def run(self, volume_snapshot):
        if volume_snapshot is None:
            return None
        ctx = self.ctx
        conn = ctx.source
        self.source_volume()
        wanted = markers(ctx.migration_id, self.volume_id, ROLE_TEMPORARY)
        found = marked_volumes(conn, ctx.migration_id, **wanted)
        usable = [v for v in found
                  if v.status in ('creating', 'available', 'uploading')]
        for volume in found:
            if volume not in usable:
                delete_volume(conn, volume, ctx.timeout)
        if usable:
            clone = usable[0]
        else:
            self.say_volume('a temporary volume from the snapshot')
            try:
                clone = conn.block_storage.create_volume(
                    size=self.volume.size, snapshot_id=volume_snapshot,
                    name='om-tmp-%s-%s' % (self.volume.name or self.volume_id,
                                           ctx.migration_id[:8]),
                    description='overcloud-migrate: temporary copy for '
                                'migration %s' % ctx.migration_id,
                    metadata=wanted)
            except sdk_exc.SDKException as exc:
                self.fail('Copying ' + self.label, exc)
        clone = wait_settled(conn, 'volume', clone, ctx.timeout)
        return self.wait(conn, 'volume', clone).id

    def revert(self, *args, **kwargs):
        ctx = self.ctx
        for volume in marked_volumes(ctx.source, ctx.migration_id, **{
                PROP_SOURCE_VOLUME: self.volume_id,
                PROP_ROLE: ROLE_TEMPORARY}):
            delete_volume(ctx.source, volume, ctx.timeout)


class UploadVolume(VolumePhase):
    """Cinder uploads the copy (or the available volume) to a source
    image, qcow2 (zero clusters dropped)."""

    phase = 'volume-upload'
    need_kinds = ('volume_clone',)
    provides_kind = 'volume_image'

    def run(self, volume_clone):
        ctx = self.ctx
        conn = ctx.source
        self.source_volume()
        upload_from = volume_clone or self.volume_id
        name = image_name(ctx.migration_id, self.volume_id)
        found = source_images(conn, ctx.migration_id, self.volume_id)
        usable = [i for i in found if i.status in ('queued', 'saving',
                                                   'active')]
        delete_images(conn, [i for i in found if i not in usable])
        if usable:
            image_id = usable[0].id
        else:
            image_id = self._upload(upload_from, name, DISK_FORMAT)
        image = self._settled_image(image_id, upload_from)
        if image.disk_format != 'raw' and \
                (image.size or 0) > self.volume.size * GIB:
            # Data that does not compress: qcow2's own tables make the
            # image larger than the volume, and Cinder refuses to make a
            # volume of that size from it.  A raw image is the volume's
            # size exactly.
            self.say_volume('the %s image is larger than the volume (%d '
                            'bytes): uploading it raw' % (image.disk_format,
                                                         image.size))
            delete_images(conn, [image])
            image = self._settled_image(
                self._upload(upload_from, name, 'raw'), upload_from)
        return image.id

    def _upload(self, upload_from, name, disk_format):
        """Ask Cinder to upload the volume; the new image's ID."""
        self.say_volume('uploading to a %s image' % disk_format)
        try:
            reply = self.ctx.source.block_storage.upload_volume_to_image(
                upload_from, name, disk_format=disk_format,
                container_format='bare')
        except sdk_exc.SDKException as exc:
            self.fail('Uploading ' + self.label, exc)
        return reply['image_id']

    def _settled_image(self, image_id, upload_from):
        """The image once active and marked, the volume let go."""
        ctx = self.ctx
        conn = ctx.source
        try:
            conn.image.update_image(image_id, **{
                PROP_MIGRATION: ctx.migration_id,
                PROP_SOURCE_VOLUME: self.volume_id,
                PROP_SOURCE_SERVER: ctx.server.id})
        except sdk_exc.SDKException:
            pass    # the name marks it too
        try:
            image = conn.image.wait_for_status(
                conn.image.get_image(image_id), 'active',
                failures=['killed', 'deleted'], interval=POLL,
                wait=ctx.timeout)
        except sdk_exc.ResourceTimeout:
            self.refuse('was not uploaded within %d s (image %s).'
                        % (ctx.timeout, image_id))
        except sdk_exc.SDKException as exc:
            self.fail('Uploading ' + self.label, exc)
        # The copy is done once Cinder lets the volume go again.
        settled = wait_settled(conn, 'volume', upload_from, ctx.timeout)
        if settled is None or settled.status.startswith('error'):
            self.refuse('could not be uploaded: the volume it was read from '
                        '(%s) is %s.' % (upload_from, settled.status
                                         if settled else 'gone'))
        self.source_volume()
        return image

    def revert(self, *args, **kwargs):
        ctx = self.ctx
        delete_images(ctx.source, source_images(ctx.source, ctx.migration_id,
                                                self.volume_id))


class TransferVolumeImage(VolumePhase):
    """The volume's image to the destination Glance with the transport;
    sha512 and size checked."""

    phase = 'volume-transfer'
    need_kinds = ('volume_image',)
    provides_kind = 'volume_dest_image'

    def run(self, volume_image):
        ctx = self.ctx
        image = ctx.source.image.get_image(volume_image)
        for found in tasks.marked_images(ctx.dest, ctx.migration_id, **{
                PROP_SOURCE_IMAGE: image.id}):
            if found.status == 'active' and image_tasks.hash_ok(found, image):
                return found.id
            ctx.dest.image.delete_image(found, ignore_missing=True)
        last = None
        for attempt in (1, 2):
            try:
                dest = ctx.dest.image.create_image(
                    name=image.name, disk_format=image.disk_format,
                    container_format=image.container_format,
                    visibility='private', **{
                        PROP_MIGRATION: ctx.migration_id,
                        PROP_SOURCE_IMAGE: image.id,
                        PROP_SOURCE_VOLUME: self.volume_id,
                        PROP_SOURCE_SERVER: ctx.server.id})
            except sdk_exc.SDKException as exc:
                self.fail('Creating the destination image of ' + self.label,
                          exc)
            self.say_volume('transferring %s MB with %s (attempt %d)' % (
                round((image.size or 0) / 1e6, 1), ctx.transport.name,
                attempt))
            try:
                result = ctx.transport.transfer(
                    transport_base.ImageRef(ctx.source, image.id, image.size,
                                            image.hash_algo, image.hash_value,
                                            image.name),
                    transport_base.ImageRef(ctx.dest, dest.id),
                    ctx.progress_bar(self.volume.name or self.volume_id)
                    if ctx.progress_bar else (lambda done, total: None))
                dest = ctx.dest.image.wait_for_status(
                    ctx.dest.image.get_image(dest.id), 'active',
                    failures=['killed', 'deleted'], interval=POLL,
                    wait=ctx.timeout)
            except transport_base.HashMismatch as exc:
                last = str(exc)
                ctx.dest.image.delete_image(dest, ignore_missing=True)
                continue
            except (transport_base.TransportError,
                    sdk_exc.SDKException) as exc:
                ctx.dest.image.delete_image(dest, ignore_missing=True)
                self.fail('Transferring ' + self.label, exc)
            if image_tasks.hash_ok(dest, image) and dest.size == result.bytes \
                    and (image.hash_algo != 'sha512'
                         or result.sha512 == image.hash_value):
                ctx.journal.update_volume(
                    ctx.migration_id, self.volume_id, bytes=result.bytes,
                    transfer_seconds=result.seconds)
                return dest.id
            last = 'size %s/%s, %s %s/%s' % (
                dest.size, image.size, image.hash_algo,
                (dest.hash_value or '')[:12], (image.hash_value or '')[:12])
            ctx.dest.image.delete_image(dest, ignore_missing=True)
        self.refuse('arrived damaged twice (%s).' % last)

    def revert(self, *args, **kwargs):
        ctx = self.ctx
        for image in tasks.marked_images(ctx.dest, ctx.migration_id, **{
                PROP_SOURCE_VOLUME: self.volume_id}):
            ctx.dest.image.delete_image(image, ignore_missing=True)


class CreateVolume(VolumePhase):
    """The destination volume from the transferred image."""

    phase = 'volume-create'
    need_kinds = ('volume_dest_image',)
    provides_kind = 'volume_dest'

    def run(self, volume_dest_image):
        return self.ensure_copy(volume_dest_image)

    def revert(self, *args, **kwargs):
        revert_copies(self.ctx, [self.volume_id])


def revert_copies(ctx, volume_ids):
    """Delete the destination copies of ``volume_ids`` this migration
    made (a server that had them attached is deleted first)."""
    for volume in marked_volumes(ctx.dest, ctx.migration_id,
                                 **{PROP_ROLE: ROLE_COPY}):
        if (volume.metadata or {}).get(PROP_SOURCE_VOLUME) in volume_ids:
            delete_volume(ctx.dest, volume, ctx.timeout)


def block_device_mapping(ctx, results, dest_image_id=None):
    """Nova's block_device_mapping_v2 for the server: its boot volume (or
    image) and data volumes with their device names, boot index and
    delete_on_termination, in the source's order."""
    mapping = []
    server = ctx.server
    root = root_copy_key(ctx)
    if root:
        # warm --dest-boot-volume: the root disk's synced volume
        mapping.append({'boot_index': 0,
                        'uuid': results[result_name('volume_dest', root)],
                        'source_type': 'volume',
                        'destination_type': 'volume',
                        'delete_on_termination': True})
    elif server.boot_source == 'image' and server.volumes:
        mapping.append({'boot_index': 0, 'uuid': dest_image_id,
                        'source_type': 'image', 'destination_type': 'local',
                        'delete_on_termination': True})
    for attachment in server.volumes:
        entry = {'uuid': results[result_name('volume_dest',
                                             attachment.volume_id)],
                 'source_type': 'volume', 'destination_type': 'volume',
                 'boot_index': (0 if attachment.boot_index == 0 else -1),
                 'delete_on_termination': attachment.delete_on_termination}
        if attachment.device:
            entry['device_name'] = attachment.device
        mapping.append(entry)
    return mapping


def _device_order(device):
    name = (device or '').rsplit('/', 1)[-1]
    return (len(name), name)


class VerifyVolumes(tasks.Phase):
    """The destination server has a copy of every volume, in order, with
    the source's size, type and bootable flag."""

    phase = 'verify-volumes'

    def __init__(self, context):
        root = root_copy_key(context)
        self.volume_ids = ([root] if root else []) + [
            a.volume_id for a in context.server.volumes]
        task.Task.__init__(
            self, name='%s:%s' % (self.phase, context.server.id),
            requires=['dest_server_id'] + [
                result_name('volume_dest', volume_id)
                for volume_id in self.volume_ids])
        self.ctx = context

    def execute(self, dest_server_id, **results):
        return super().execute(dest_server_id, results)

    def run(self, dest_server_id, results):
        ctx = self.ctx
        conn = ctx.dest
        attached = sorted(conn.compute.volume_attachments(dest_server_id),
                          key=lambda a: _device_order(a.device))
        want = [results[result_name('volume_dest', volume_id)]
                for volume_id in self.volume_ids]
        have = [a.volume_id for a in attached]
        problems = []
        if have != want:
            problems.append('attached %s, expected %s in that order'
                            % (have, want))
        root = root_copy_key(ctx)
        for volume_id in self.volume_ids:
            source = (root_volume(ctx) if volume_id == root
                      else ctx.plan.by_id('volumes', volume_id))
            copy = conn.block_storage.get_volume(
                results[result_name('volume_dest', volume_id)])
            label = "volume '%s'" % (source.name or source.id)
            if copy.size != source.size:
                problems.append('%s is %s GiB, expected %d'
                                % (label, copy.size, source.size))
            volume_type = dest_volume_type(ctx.plan, source)
            if volume_type and copy.volume_type != volume_type:
                problems.append('%s is of type %s, expected %s'
                                % (label, copy.volume_type, volume_type))
            if bool(copy.is_bootable) != bool(source.bootable):
                problems.append('%s has bootable %s, expected %s'
                                % (label, copy.is_bootable, source.bootable))
        if problems:
            raise tasks.MigrationError(
                "The volumes of server '%s' at the destination are not the "
                "source's: %s" % (ctx.server.name, '; '.join(problems)))


class CleanVolumes(tasks.Phase):
    """Delete the destination images and every temporary source
    snapshot, volume and image of this server's volumes."""

    phase = 'volume-cleanup'

    def run(self):
        clean_temporaries(self.ctx, [a.volume_id
                                     for a in self.ctx.server.volumes])

    def revert(self, *args, **kwargs):
        pass


def clean_temporaries(ctx, volume_ids):
    """What the data path of ``volume_ids`` left on the way (idempotent):
    the destination images, and the source snapshots, temporary volumes
    and images; a side the context has no connection to (``migrate
    --handoff`` has no destination, the Receiver no source) is skipped."""
    source, dest, migration_id = ctx.source, ctx.dest, ctx.migration_id
    wanted = set(volume_ids)
    for image in tasks.marked_images(dest, migration_id) if dest else ():
        if (image.properties or {}).get(PROP_SOURCE_VOLUME) in wanted:
            dest.image.delete_image(image, ignore_missing=True)
    if source is None:
        return
    for volume_id in volume_ids:
        delete_images(source, source_images(source, migration_id, volume_id))
    for volume in marked_volumes(source, migration_id,
                                 **{PROP_ROLE: ROLE_TEMPORARY}):
        if volume.metadata.get(PROP_SOURCE_VOLUME) in wanted:
            delete_volume(source, volume, ctx.timeout)
    for snapshot in marked_snapshots(source, migration_id,
                                     **{PROP_ROLE: ROLE_SNAPSHOT}):
        if snapshot.metadata.get(PROP_SOURCE_VOLUME) in wanted:
            delete_snapshot(source, snapshot, ctx.timeout)


def volume_tasks(ctx, steps=None):
    """The tasks of each volume of ``ctx.server``, volume by volume:
    ``steps`` (task classes, in order) or the cold path's five."""
    found = []
    for attachment in ctx.server.volumes:
        for cls in steps or (SnapshotVolume, CloneVolume, UploadVolume,
                             TransferVolumeImage, CreateVolume):
            found.append(cls(ctx, attachment.volume_id))
    return found
