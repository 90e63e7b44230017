"""What a migration makes in Cinder, found again by its markers.

Every snapshot, temporary volume and destination copy a migration makes
carries Cinder metadata (``om_migration``, ``om_source_volume``,
``om_role``), every volume image its properties and a name of its own; these
helpers find them again, always filtering on the client (openstacksdk drops
query filters it does not know, so a server-side filter could return
everything), wait for them to settle and delete them.  The tasks of
:mod:`overcloud_migrate.workflow.volumes` and the rollback build on them.
"""

import time

from openstack import exceptions as sdk_exc

from overcloud_migrate.plan import model
from overcloud_migrate.workflow import tasks

PROP_MIGRATION = tasks.PROP_MIGRATION
PROP_SOURCE_SERVER = tasks.PROP_SOURCE_SERVER
PROP_SOURCE_IMAGE = tasks.PROP_SOURCE_IMAGE
PROP_SOURCE_VOLUME = 'om_source_volume'
#: what a marked Cinder resource is: a source snapshot or temporary volume,
#: or the destination copy
PROP_ROLE = 'om_role'
ROLE_SNAPSHOT = 'snapshot'
ROLE_TEMPORARY = 'temporary'
ROLE_COPY = 'copy'
DISK_FORMAT = 'qcow2'
#: statuses a volume or snapshot passes through on its own
TRANSIENT = ('creating', 'downloading', 'uploading', 'attaching',
             'detaching', 'reserved', 'deleting', 'backing-up',
             'restoring-backup', 'extending', 'maintenance',
             'awaiting-transfer', 'unmanaging')
POLL = 0.5
VOLUME_FAILURES = ['error', 'error_restoring', 'error_extending',
                   'error_managing']
#: the phases of one volume, in order (the fault hook's names)
PHASES = ('volume-snapshot', 'volume-clone', 'volume-upload',
          'volume-transfer', 'volume-create')


GIB = 1024 ** 3


def root_copy_key(ctx):
    """The ID the destination volume of an image-booted server's root
    disk goes by (journal, markers, sync key) under warm migration's
    --dest-boot-volume; None for a server without one."""
    if ctx.dest_boot_volume and ctx.server.boot_source != 'volume':
        return 'root-%s' % ctx.server.id
    return None


def root_volume(ctx):
    """The volume record of that root disk's destination copy: as large
    as the flavor's root disk, the image and its min_disk ask (whole GiB),
    bootable."""
    server = ctx.server
    flavor = ctx.plan.by_id('flavors', server.flavor_id)
    image = ctx.plan.by_id('images', server.image_id) \
        if server.image_id else None
    size = max(flavor.disk if flavor else 0,
               image.min_disk if image else 0,
               -(-(image.size or 0) // GIB) if image else 0, 1)
    return model.Volume(
        id=root_copy_key(ctx), size=size, name='%s-root' % server.name,
        description='root disk of server %s (%s)' % (server.name, server.id),
        bootable=True)


def result_name(kind, volume_id):
    """The TaskFlow storage name of one volume's ``kind`` of result."""
    return '%s:%s' % (kind, volume_id)


def markers(migration_id, volume_id, role):
    return {PROP_MIGRATION: migration_id, PROP_SOURCE_VOLUME: volume_id,
            PROP_ROLE: role}


def _has(metadata, wanted):
    metadata = dict(metadata or {})
    return all(metadata.get(k) == v for k, v in wanted.items())


def marked_volumes(conn, migration_id, **wanted):
    """Volumes of the project carrying these markers (checked here)."""
    wanted = dict(wanted, **{PROP_MIGRATION: migration_id})
    return [v for v in conn.block_storage.volumes(details=True)
            if _has(v.metadata, wanted)]


def marked_snapshots(conn, migration_id, **wanted):
    """Snapshots of the project carrying these markers (checked here)."""
    wanted = dict(wanted, **{PROP_MIGRATION: migration_id})
    return [s for s in conn.block_storage.snapshots(details=True)
            if _has(s.metadata, wanted)]


def image_name(migration_id, volume_id):
    """The name of the source image Cinder uploads a volume into; a
    marker too (Cinder's upload takes no image properties)."""
    return 'om-vol-%s-%s' % (migration_id, volume_id)


def source_images(conn, migration_id, volume_id=None):
    """The source images uploaded for this migration (one volume's when
    ``volume_id`` is given): by name, then by the properties we set."""
    found = []
    prefix = 'om-vol-%s-' % migration_id
    for image in conn.image.images(owner=conn.current_project_id):
        props = dict(image.properties or {})
        name = image.name or ''
        ours = (name.startswith(prefix) or props.get(PROP_MIGRATION)
                == migration_id and PROP_SOURCE_VOLUME in props)
        if not ours:
            continue
        source = props.get(PROP_SOURCE_VOLUME) or name[len(prefix):]
        if volume_id is None or source == volume_id:
            found.append(image)
    return found


def wait_settled(conn, kind, item, timeout):
    """Wait until a volume or snapshot is in no transient status; returns
    it (None once gone)."""
    get = getattr(conn.block_storage, 'get_%s' % kind)
    deadline = time.monotonic() + timeout
    while True:
        try:
            item = get(item.id if hasattr(item, 'id') else item)
        except sdk_exc.NotFoundException:
            return None
        if item.status not in TRANSIENT or time.monotonic() > deadline:
            return item
        time.sleep(POLL)


def delete_volume(conn, volume, timeout):
    """Delete a volume (its snapshots first) and wait until it is gone;
    an attached one is waited for until a server delete detaches it."""
    deadline = time.monotonic() + timeout
    while True:
        volume = wait_settled(conn, 'volume', volume, timeout)
        if volume is None:
            return
        if volume.status != 'in-use' or time.monotonic() > deadline:
            break
        time.sleep(POLL)
    for snapshot in conn.block_storage.snapshots(volume_id=volume.id):
        if snapshot.volume_id == volume.id:
            delete_snapshot(conn, snapshot, timeout)
    conn.block_storage.delete_volume(volume, ignore_missing=True)
    conn.block_storage.wait_for_delete(volume, interval=POLL, wait=timeout)


def delete_snapshot(conn, snapshot, timeout):
    snapshot = wait_settled(conn, 'snapshot', snapshot, timeout)
    if snapshot is None:
        return
    conn.block_storage.delete_snapshot(snapshot, ignore_missing=True)
    conn.block_storage.wait_for_delete(snapshot, interval=POLL, wait=timeout)


def delete_images(conn, images):
    for image in images:
        conn.image.delete_image(image, ignore_missing=True)


def dest_volume_type(plan, volume):
    """The destination volume type of ``volume`` (None: the default)."""
    if not volume.volume_type:
        return None
    return plan.mappings.volume_types.get(volume.volume_type,
                                          volume.volume_type)


def dest_zone(plan, volume):
    zone = volume.availability_zone
    if not zone:
        return None
    return plan.mappings.availability_zones.get(zone, zone)
