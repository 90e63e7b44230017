"""The tasks that carry a server's image: source Glance -> destination
Glance through a transport (``transfer``), into a handoff item for the
Receiver (``handoff``, which writes the item's plan and marker too), and
from a handoff item into the destination Glance (``upload``, with
:func:`upload_from_item`, which the volumes' files use as well).

Like every task of :mod:`overcloud_migrate.workflow.tasks`, each finds its
own earlier effect before acting (the destination image by its marker
properties, a complete item by its marker file), so a re-run after a crash
never duplicates a resource, and its revert deletes what it made.  A module
of its own so that :mod:`~overcloud_migrate.workflow.tasks` keeps the
server's own steps (stop, snapshot, boot, verify, clean-up).
"""

from openstack import exceptions as sdk_exc

from overcloud_migrate import handoff
from overcloud_migrate import journal as journal_mod
from overcloud_migrate.plan import model
from overcloud_migrate.transports import base as transport_base
from overcloud_migrate.transports import streams
from overcloud_migrate.workflow import tasks
from overcloud_migrate.workflow import volume_marks
from overcloud_migrate.workflow.tasks import (
    MigrationError,
    Phase,
    PROP_MIGRATION,
    PROP_SOURCE_IMAGE,
    PROP_SOURCE_SERVER,
    KEEP_PREFIXES,
    fault,
    marked_images,
)

POLL_INTERVAL = tasks.POLL_INTERVAL

class TransferImage(Phase):
    """Create the destination image and move the bytes; verify the hash."""

    phase = 'transfer'
    default_provides = 'dest_image_id'
    needs = ('snapshot_id',)

    def run(self, snapshot_id):
        ctx = self.ctx
        snapshot = ctx.source.image.get_image(snapshot_id)
        for image in marked_images(ctx.dest, ctx.migration_id, **{
                PROP_SOURCE_IMAGE: snapshot_id}):
            if image.status == 'active' and hash_ok(image, snapshot):
                return image.id
            ctx.dest.image.delete_image(image, ignore_missing=True)
        last = None
        for attempt in (1, 2):
            image = self._create(snapshot)
            self.say('transferring %s MB with %s (attempt %d)'
                     % (round((snapshot.size or 0) / 1e6, 1),
                        ctx.transport.name, attempt))
            try:
                result = ctx.transport.transfer(
                    transport_base.ImageRef(
                        ctx.source, snapshot.id, snapshot.size,
                        snapshot.hash_algo, snapshot.hash_value,
                        snapshot.name),
                    transport_base.ImageRef(ctx.dest, image.id),
                    ctx.progress_bar(ctx.server.name) if ctx.progress_bar
                    else (lambda done, total: None))
                image = ctx.dest.image.wait_for_status(
                    ctx.dest.image.get_image(image.id), 'active',
                    failures=['killed', 'deleted'], wait=ctx.timeout,
                    interval=POLL_INTERVAL)
            except transport_base.HashMismatch as exc:
                # Caught on the way (a staging driver): send it again.
                last = str(exc)
                self._damaged(image, last)
                continue
            except (transport_base.TransportError,
                    sdk_exc.SDKException) as exc:
                ctx.dest.image.delete_image(image, ignore_missing=True)
                self.fail('Transferring the image', exc)
            if hash_ok(image, snapshot) and image.size == result.bytes \
                    and (snapshot.hash_algo != 'sha512'
                         or result.sha512 == snapshot.hash_value):
                ctx.journal.update_server(
                    ctx.migration_id, ctx.server.id, bytes=result.bytes,
                    transfer_seconds=result.seconds)
                return image.id
            last = ('size %s/%s, %s %s/%s' % (
                image.size, snapshot.size, snapshot.hash_algo,
                (image.hash_value or '')[:12],
                (snapshot.hash_value or '')[:12]))
            self._damaged(image, last)
        raise MigrationError("The image of server '%s' arrived damaged twice "
                             '(%s)' % (ctx.server.name, last))

    def _damaged(self, image, what):
        ctx = self.ctx
        self.say('hash mismatch (%s): sending the image again' % what)
        ctx.journal.log(ctx.migration_id, "image of server '%s' arrived "
                        'damaged (%s); sent again' % (ctx.server.name, what),
                        'warning')
        ctx.dest.image.delete_image(image, ignore_missing=True)

    def _create(self, snapshot):
        ctx = self.ctx
        props = kept_properties(ctx, snapshot)
        props.update({PROP_MIGRATION: ctx.migration_id,
                      PROP_SOURCE_IMAGE: snapshot.id,
                      PROP_SOURCE_SERVER: ctx.server.id})
        try:
            return ctx.dest.image.create_image(
                name=snapshot.name, disk_format=snapshot.disk_format,
                container_format=snapshot.container_format,
                min_disk=snapshot.min_disk or 0,
                min_ram=snapshot.min_ram or 0, visibility='private',
                **props)
        except sdk_exc.SDKException as exc:
            self.fail('Creating the destination image', exc)

    def revert(self, *args, **kwargs):
        for image in marked_images(self.ctx.dest, self.ctx.migration_id, **{
                PROP_SOURCE_SERVER: self.ctx.server.id}):
            self.ctx.dest.image.delete_image(image, ignore_missing=True)


def kept_properties(ctx, snapshot):
    """The snapshot's properties worth keeping, with those of the
    server's base image (when the plan has it) as defaults."""
    props = {k: v for k, v in (snapshot.properties or {}).items()
             if k.startswith(KEEP_PREFIXES) and v is not None
             and not isinstance(v, (dict, list))}
    base_image = ctx.plan.by_id('images', ctx.server.image_id or '')
    if base_image is not None:
        for key, value in base_image.properties.items():
            props.setdefault(key, value)
    return props


class HandOff(Phase):
    """migrate --handoff: leave the server's item for the Receiver.

    The image goes first (the volumes' files are already there, see
    :mod:`overcloud_migrate.workflow.volume_handoff`), then the plan, then
    the marker, each written atomically by the transport into
    ``<directory>/<migration>-<server>/``; re-running rewrites the same
    item (a complete image is reused).  A server that boots from a volume
    has no image.
    """

    phase = 'handoff'

    def __init__(self, context, **kwargs):
        # The snapshot (an image-booted server) and each volume's file.
        self.needs = tuple(
            ([] if context.server.boot_source == 'volume'
             else ['snapshot_id'])
            + [volume_marks.result_name('volume_item', a.volume_id)
               for a in context.server.volumes])
        super().__init__(context, **kwargs)

    def execute(self, **results):
        return super().execute(**results)

    def run(self, snapshot_id=None, **volume_items):
        ctx = self.ctx
        snapshot = image = None
        if snapshot_id is not None:
            snapshot = ctx.source.image.get_image(snapshot_id)
            image = model.Image(
                id=snapshot.id, name=snapshot.name,
                disk_format=snapshot.disk_format,
                container_format=snapshot.container_format,
                size=snapshot.size, hash_algo=snapshot.hash_algo,
                hash_value=snapshot.hash_value,
                min_disk=snapshot.min_disk or 0,
                min_ram=snapshot.min_ram or 0,
                properties=kept_properties(ctx, snapshot))
        volumes = [volume_items[k] for k in self.needs if k in volume_items]
        try:
            item = handoff.item_name(ctx.migration_id, ctx.server.id)
            image_name = snapshot and handoff.image_file(snapshot.disk_format)
            plan_data = handoff.plan_bytes(handoff.server_plan(
                ctx.plan, ctx.server.id, image))
        except (model.PlanError, handoff.ItemError) as exc:
            self.fail('Writing the plan', exc)
        entry = None
        try:
            if snapshot is not None:
                self.say('handing off %s MB to %s with %s'
                         % (round((snapshot.size or 0) / 1e6, 1),
                            ctx.transport.options.get('directory'),
                            ctx.transport.name))
                count, sha512 = ctx.transport.handoff_image(
                    transport_base.ImageRef(
                        ctx.source, snapshot.id, snapshot.size,
                        snapshot.hash_algo, snapshot.hash_value,
                        snapshot.name),
                    item, image_name,
                    ctx.progress_bar(ctx.server.name) if ctx.progress_bar
                    else (lambda done, total: None))
                entry = handoff.file_entry(image_name, count, sha512,
                                           snapshot.id)
            fault('during:handoff')
            ctx.transport.handoff_file(item, handoff.PLAN_FILE, plan_data)
            ctx.transport.handoff_file(item, handoff.MARKER,
                                       handoff.marker_bytes(
                                           ctx.migration_id, ctx.server,
                                           plan_data, entry, volumes))
        except transport_base.TransportError as exc:
            self.fail('Handing off', exc)
        ctx.journal.update_server(
            ctx.migration_id, ctx.server.id, state=journal_mod.HANDED_OFF,
            bytes=sum(e['size'] for e in volumes + [entry] if e))
        return item


class UploadImage(Phase):
    """The Receiver: upload the item's image file into the destination
    Glance, checking size and sha512 on the way and after."""

    phase = 'upload'
    default_provides = 'dest_image_id'

    def run(self):
        ctx = self.ctx
        item = ctx.item
        snapshot = item.image
        props = dict(snapshot.properties)
        props.update({PROP_MIGRATION: ctx.migration_id,
                      PROP_SOURCE_IMAGE: snapshot.id,
                      PROP_SOURCE_SERVER: ctx.server.id})
        image_id = upload_from_item(
            self, item.open_image, item.size, item.sha512,
            'the image', {PROP_SOURCE_IMAGE: snapshot.id}, dict(
                name=snapshot.name, disk_format=snapshot.disk_format,
                container_format=snapshot.container_format,
                min_disk=snapshot.min_disk, min_ram=snapshot.min_ram,
                visibility='private', **props))
        ctx.journal.update_server(ctx.migration_id, ctx.server.id,
                                  bytes=item.size)
        return image_id

    def revert(self, *args, **kwargs):
        for image in marked_images(self.ctx.dest, self.ctx.migration_id, **{
                PROP_SOURCE_SERVER: self.ctx.server.id}):
            self.ctx.dest.image.delete_image(image, ignore_missing=True)


def upload_from_item(phase, open_file, size, sha512, what, marks, attrs):
    """The Receiver: a destination image with ``attrs`` holding the
    item's file (``open_file()``, ``size`` bytes, ``sha512``), checked on
    the way and after; returns its ID.

    An earlier upload (an image of this migration with ``marks``) is kept
    when complete and whole, else deleted and done again; a damaged one is
    deleted and fails ``phase`` with a sentence naming ``what``.
    """
    ctx = phase.ctx
    item = ctx.item

    def whole(image):
        return (image.size == size
                and (image.hash_algo or '').lower() == 'sha512'
                and (image.hash_value or '').lower() == sha512)

    for image in marked_images(ctx.dest, ctx.migration_id, **marks):
        if image.status == 'active' and whole(image):
            phase.say('%s is already uploaded (%s)' % (what, image.id))
            return image.id
        ctx.dest.image.delete_image(image, ignore_missing=True)
    try:
        image = ctx.dest.image.create_image(**attrs)
    except sdk_exc.SDKException as exc:
        phase.fail('Creating the destination image of %s' % what, exc)
    phase.say('uploading %s (%s MB) from %s' % (
        what, round(size / 1e6, 1), item.name))
    try:
        with open_file() as data:
            chunks = streams.VerifiedChunks(
                data.read, sha512, '%s of item %s' % (what, item.name), size)
            fault('during:%s' % phase.phase)
            streams.upload(transport_base.ImageRef(ctx.dest, image.id),
                           chunks, size)
        image = ctx.dest.image.wait_for_status(
            ctx.dest.image.get_image(image.id), 'active',
            failures=['killed', 'deleted'], wait=ctx.timeout,
            interval=POLL_INTERVAL)
    except (handoff.ItemError, OSError, transport_base.TransportError,
            sdk_exc.SDKException) as exc:
        ctx.dest.image.delete_image(image, ignore_missing=True)
        phase.fail('Uploading %s' % what, exc)
    if not whole(image):
        ctx.dest.image.delete_image(image, ignore_missing=True)
        raise MigrationError(
            "%s of server '%s' does not match its item %s after the upload "
            '(size %s, expected %d; %s %s..., expected sha512 %s...); it was '
            'deleted.' % (what[0].upper() + what[1:], ctx.server.name,
                          item.name, image.size, size, image.hash_algo,
                          (image.hash_value or '')[:16], sha512[:16]))
    return image.id


def hash_ok(image, snapshot):
    return (image.hash_algo == snapshot.hash_algo
            and image.hash_value == snapshot.hash_value
            and image.size == snapshot.size)
