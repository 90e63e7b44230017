"""The volumes of a handoff item: written by ``migrate --handoff`` at the
source, read by the Receiver at the destination.

At the source, each volume of the stopped server takes the cold path's
first three steps (``volume-snapshot``, ``volume-clone``,
``volume-upload``: a qcow2 image of a consistent copy in the source
Glance, see :mod:`overcloud_migrate.workflow.volumes`), then

``volume-handoff``
    the transport writes that image's bytes into the item as
    ``volume-<volume id>.qcow2`` (atomically, sha512 computed on the way);
    the marker, written last by the ``handoff`` task, holds each file's size
    and sha512, so a Receiver never sees a volume file before it is whole.

The source temporaries (snapshot, temporary volume, image) are deleted
once the marker is written (``volume-cleanup``): the item holds the bytes.

At the destination, the Receiver takes each volume

``volume-receive``
    from its file into a destination Glance image, the sha512 checked on
    the way against the marker's and Glance's own afterwards (a mismatch
    deletes the image and fails the item);

then the cold path's ``volume-create`` (the volume from that image, the
mapped type and zone), the boot with the same block device mapping,
``verify-volumes`` and ``volume-cleanup`` (the destination images go).
Every step finds its earlier effect by the migration's markers, so a
Receiver killed mid-volume and started again ends with one volume per
source volume.
"""

from overcloud_migrate import handoff
from overcloud_migrate.transports import base as transport_base
from overcloud_migrate.workflow import images
from overcloud_migrate.workflow import volumes
from overcloud_migrate.workflow.volume_marks import (
    PROP_MIGRATION,
    PROP_SOURCE_IMAGE,
    PROP_SOURCE_SERVER,
    PROP_SOURCE_VOLUME,
)


class HandOffVolume(volumes.VolumePhase):
    """migrate --handoff: the volume's source image into the item."""

    phase = 'volume-handoff'
    need_kinds = ('volume_image',)
    provides_kind = 'volume_item'

    def run(self, volume_image):
        ctx = self.ctx
        image = ctx.source.image.get_image(volume_image)
        try:
            item = handoff.item_name(ctx.migration_id, ctx.server.id)
            name = handoff.volume_file(self.volume_id, image.disk_format)
        except handoff.ItemError as exc:
            self.fail('Handing off ' + self.label, exc)
        self.say_volume('handing off %s MB to %s with %s' % (
            round((image.size or 0) / 1e6, 1),
            ctx.transport.options.get('directory'), ctx.transport.name))
        try:
            count, sha512 = ctx.transport.handoff_image(
                transport_base.ImageRef(ctx.source, image.id, image.size,
                                        image.hash_algo, image.hash_value,
                                        image.name),
                item, name,
                ctx.progress_bar(self.volume.name or self.volume_id)
                if ctx.progress_bar else (lambda done, total: None))
        except transport_base.TransportError as exc:
            self.fail('Handing off ' + self.label, exc)
        ctx.journal.update_volume(ctx.migration_id, self.volume_id,
                                  bytes=count)
        return handoff.file_entry(name, count, sha512, self.volume_id,
                                  image_id=image.id)

    def revert(self, *args, **kwargs):
        pass    # the item is the handoff task's; a resume rewrites the file


class ReceiveVolume(volumes.TransferVolumeImage):
    """The Receiver: the volume's file from the item into a destination
    image (``volume_dest_image``, what ``volume-create`` takes); its revert
    is the transfer's (the volume's destination images go)."""

    phase = 'volume-receive'
    need_kinds = ()

    def run(self):
        ctx = self.ctx
        entry = ctx.item.volumes[self.volume_id]
        marks = {PROP_SOURCE_VOLUME: self.volume_id,
                 PROP_SOURCE_IMAGE: entry.get('image_id') or entry['file']}
        image_id = images.upload_from_item(
            self, lambda: ctx.item.open_volume(self.volume_id),
            entry['size'], entry['sha512'], "volume '%s' (%s)" % (
                self.volume.name or self.volume_id, self.volume_id),
            marks, dict(marks, **{
                # volume-<id>.<disk format>, as HandOffVolume named it
                'name': entry['file'],
                'disk_format': entry['file'].rsplit('.', 1)[-1],
                'container_format': 'bare', 'visibility': 'private',
                PROP_MIGRATION: ctx.migration_id,
                PROP_SOURCE_SERVER: ctx.server.id}))
        ctx.journal.update_volume(ctx.migration_id, self.volume_id,
                                  bytes=entry['size'])
        return image_id


#: a volume's steps under ``migrate --handoff`` and in the Receiver
AT_THE_SOURCE = (volumes.SnapshotVolume, volumes.CloneVolume,
                 volumes.UploadVolume, HandOffVolume)
IN_THE_RECEIVER = (ReceiveVolume, volumes.CreateVolume)
