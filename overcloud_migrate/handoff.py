"""The handoff item: one server's plan, image and volumes, left in a
directory.

``openstack overcloud migrate --handoff DIR`` writes one item per server;
the Receiver (:mod:`overcloud_migrate.receiver`) at the destination picks
it up.  An item is a directory ``DIR/<migration id>-<server id>/``::

    plan.json     the server, its volumes and its network world (a Plan)
    image.<fmt>   the snapshot's bytes (<fmt> is its disk format); none for
                  a server that boots from a volume
    volume-<volume id>.<fmt>
                  the bytes of each attached volume (the image Cinder
                  uploaded it to, qcow2)
    COMPLETE      the marker, written last: size and sha512 of every file
    status.json   written by the Receiver (state, reason), for the source

Every file is written atomically (a temporary name, fsync, rename, fsync
of the directory), and the marker last, so a reader that sees the marker
sees whole files; the reader still checks sizes and hashes against it
before acting.  The Receiver then moves the item to ``DIR/done/`` or
``DIR/failed/``.

Reading is confined to the item: names are checked, files are opened
relative to the item's directory without following symbolic links, and
the marker can only name the item's own plain files.
"""

import copy
import datetime
import errno
import hashlib
import json
import os
import re
import stat

from overcloud_migrate import atomic
from overcloud_migrate import exceptions
from overcloud_migrate.plan import model

MARKER = 'COMPLETE'
PLAN_FILE = 'plan.json'
STATUS_FILE = 'status.json'
IMAGE_PREFIX = 'image.'
VOLUME_PREFIX = 'volume-'
DONE = 'done'
FAILED = 'failed'
#: 1: plan and image; 2: volumes too, and no image for a server that boots
#: from a volume (a Receiver that reads only 1 refuses such an item rather
#: than boot the server without its volumes)
MARKER_VERSION = 1
MARKER_VERSIONS = (1, 2)
#: at most this many bytes are read from a plan, a marker or a status
MAX_SMALL_FILE = 64 * 1024 * 1024
_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$')
_FORMAT = re.compile(r'^[a-z0-9]{1,16}$')
_SHA512 = re.compile(r'^[0-9a-f]{128}$')
CHUNK = 1024 * 1024


class ItemError(exceptions.OvercloudMigrateError, ValueError):
    """An item that must not be acted on; the message says why."""


class NotReady(ItemError):
    """No marker (yet): the item is still being written."""


def valid_name(name):
    """True for a plain item or file name (no path, no '..', no dot
    file)."""
    return bool(isinstance(name, str) and _NAME.match(name)
                and '..' not in name)


def item_name(migration_id, server_id):
    name = '%s-%s' % (migration_id, server_id)
    if not valid_name(name):
        raise ItemError('The item name %r is not a plain name.' % name)
    return name


def _format(disk_format):
    fmt = (disk_format or 'raw').lower()
    if not _FORMAT.match(fmt):
        raise ItemError('The disk format %r cannot name a file of an item.'
                        % disk_format)
    return fmt


def image_file(disk_format):
    return IMAGE_PREFIX + _format(disk_format)


def volume_file(volume_id, disk_format):
    """The name of a volume's file in an item."""
    name = '%s%s.%s' % (VOLUME_PREFIX, volume_id, _format(disk_format))
    if not valid_name(volume_id) or not valid_name(name):
        raise ItemError('The volume ID %r cannot name a file of an item.'
                        % volume_id)
    return name


def file_entry(name, size, sha512, source_id, **extra):
    """A file's entry in the marker: its name, size, sha512 and the ID of
    what it holds (the snapshot image, or the volume)."""
    return dict(extra, file=name, size=size, sha512=sha512, id=source_id)


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='seconds')


# -- writing (local directories) ---------------------------------------------

# The writers live in plan.atomic (Plan.dump uses them too); these names
# are part of this module's interface.
fsync_dir = atomic.fsync_dir
atomic_write = atomic.atomic_write
write_file = atomic.write_file


# -- what the source writes --------------------------------------------------

def server_plan(plan, server_id, image):
    """The part of ``plan`` one server needs, with ``image`` (a
    :class:`model.Image`, its snapshot; None for a server that boots from a
    volume) as the plan's only image.

    The network world (networks, subnets, routers, security groups) stays
    whole; ports, floating IPs, flavors, keypairs and volumes are the
    server's own.
    """
    server = copy.deepcopy(plan.by_id('servers', server_id))
    ports = set(server.port_ids)
    part = model.Plan(
        source=copy.deepcopy(plan.source),
        mappings=copy.deepcopy(plan.mappings),
        networks=copy.deepcopy(plan.networks),
        subnets=copy.deepcopy(plan.subnets),
        routers=copy.deepcopy(plan.routers),
        security_groups=copy.deepcopy(plan.security_groups),
        keypairs=[copy.deepcopy(k) for k in plan.keypairs
                  if k.name == server.key_name],
        flavors=[copy.deepcopy(f) for f in plan.flavors
                 if f.id == server.flavor_id],
        images=[image] if image is not None else [],
        ports=[copy.deepcopy(p) for p in plan.ports if p.id in ports],
        volumes=copy.deepcopy(plan.volumes_of(server)),
        floating_ips=[copy.deepcopy(f) for f in plan.floating_ips
                      if f.port_id in ports],
        servers=[server])
    part.check_references()
    return part


def plan_bytes(plan):
    return json.dumps(plan.to_dict(), indent=2, sort_keys=True).encode()


def marker_bytes(migration_id, server, plan_data, image, volumes=()):
    """The marker's content: what the reader checks before acting.

    ``image`` and each of ``volumes`` are :func:`file_entry` dicts;
    ``image`` is None for a server that boots from a volume.
    """
    marker = {
        'version': MARKER_VERSION,
        'migration_id': migration_id,
        'server_id': server.id,
        'server_name': server.name,
        'written_at': now(),
        'plan': {'file': PLAN_FILE, 'size': len(plan_data),
                 'sha512': hashlib.sha512(plan_data).hexdigest()},
        'image': image,
    }
    if volumes or image is None:
        marker.update(version=2, volumes=list(volumes))
    return json.dumps(marker, indent=2, sort_keys=True).encode()


# -- reading -------------------------------------------------------------


class Item:
    """A complete item, checked: its marker, plan, server, image (None for
    a server that boots from a volume) and volumes."""

    def __init__(self, root, name, marker, plan):
        self.root = root
        self.name = name
        self.marker = marker
        self.plan = plan
        self.migration_id = marker['migration_id']
        self.server = plan.servers[0]
        self.image = plan.images[0] if plan.images else None
        entry = marker['image'] or {}
        self.image_name = entry.get('file')
        self.size = entry.get('size', 0)
        self.sha512 = entry.get('sha512')
        #: volume id -> its marker entry (file, size, sha512, disk_format)
        self.volumes = {v['id']: v for v in marker.get('volumes') or ()}

    @property
    def total_bytes(self):
        return self.size + sum(v['size'] for v in self.volumes.values())

    def open_image(self):
        """The image file, opened inside the item (no link followed)."""
        return self._open(self.image_name, self.size)

    def open_volume(self, volume_id):
        """The file of volume ``volume_id``, opened inside the item."""
        entry = self.volumes[volume_id]
        return self._open(entry['file'], entry['size'])

    def _open(self, file_name, want):
        with _item_dir(self.root, self.name) as dir_fd:
            fd = _open_regular(dir_fd, file_name)
        size = os.fstat(fd).st_size
        if size != want:
            os.close(fd)
            raise ItemError('%s: the file %s has %d bytes, the marker says '
                            '%d.' % (self.name, file_name, size, want))
        return os.fdopen(fd, 'rb')


class _item_dir:
    """Context manager: an O_DIRECTORY fd of ``root/name``, no link
    followed anywhere on the last step."""

    def __init__(self, root, name):
        if not valid_name(name):
            raise ItemError('%r is not a valid item name.' % name)
        self.root = root
        self.name = name
        self.fd = None

    def __enter__(self):
        root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self.fd = os.open(self.name, os.O_RDONLY | os.O_DIRECTORY
                              | os.O_NOFOLLOW, dir_fd=root_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise ItemError('%s is not a directory (or is a symbolic '
                                'link); it is not read.' % self.name)
            if exc.errno == errno.ENOENT:
                raise NotReady('%s is gone.' % self.name)
            raise
        finally:
            os.close(root_fd)
        return self.fd

    def __exit__(self, *exc):
        os.close(self.fd)


def _open_regular(dir_fd, name):
    if not valid_name(name):
        raise ItemError('%r is not a plain file name.' % name)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ItemError('%s is a symbolic link; it is not read.' % name)
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ItemError('%s is not a regular file.' % name)
    return fd


def _read_small(dir_fd, name):
    fd = _open_regular(dir_fd, name)
    with os.fdopen(fd, 'rb') as f:
        data = f.read(MAX_SMALL_FILE + 1)
    if len(data) > MAX_SMALL_FILE:
        raise ItemError('%s is larger than %d bytes.' % (name,
                                                         MAX_SMALL_FILE))
    return data


def _check_marker(name, marker):
    def need(cond, what):
        if not cond:
            raise ItemError('%s: the marker is invalid: %s.' % (name, what))

    def entry_ok(entry, part, prefix):
        need(isinstance(entry, dict), part)
        need(isinstance(entry.get('size'), int)
             and not isinstance(entry['size'], bool) and entry['size'] >= 0,
             '%s.size' % part)
        need(isinstance(entry.get('sha512'), str)
             and _SHA512.match(entry['sha512']), '%s.sha512' % part)
        need(entry.get('file') == prefix if prefix == PLAN_FILE else
             isinstance(entry.get('file'), str)
             and entry['file'].startswith(prefix)
             and valid_name(entry['file']), '%s.file' % part)
        if prefix != PLAN_FILE:
            need(isinstance(entry.get('id'), str) and entry['id'],
                 '%s.id' % part)
            need(isinstance(entry.get('image_id', ''), str),
                 '%s.image_id' % part)

    need(isinstance(marker, dict), 'not a JSON object')
    version = marker.get('version')
    need(version in MARKER_VERSIONS, 'version %r, expected one of %s' % (
        version, ', '.join(str(v) for v in MARKER_VERSIONS)))
    for key in ('migration_id', 'server_id'):
        need(isinstance(marker.get(key), str) and marker[key], key)
    entry_ok(marker.get('plan'), 'plan', PLAN_FILE)
    if marker.get('image') is not None or version == 1:
        entry_ok(marker.get('image'), 'image', IMAGE_PREFIX)
    volumes = marker.get('volumes', [])
    need(isinstance(volumes, list) and (version == 2 or not volumes),
         'volumes')
    for number, entry in enumerate(volumes):
        entry_ok(entry, 'volumes[%d]' % number, VOLUME_PREFIX)
    files = [e['file'] for e in volumes]
    ids = [e['id'] for e in volumes]
    need(len(set(files)) == len(files) and len(set(ids)) == len(ids),
         'a volume or file named twice')


def _entries(marker):
    """The marker's file entries: the image's (if any), then the
    volumes'."""
    return ([marker['image']] if marker.get('image') else []) + list(
        marker.get('volumes') or [])


def read_marker(root, name):
    """The item's marker (a dict, checked); :class:`NotReady` if none."""
    with _item_dir(root, name) as dir_fd:
        try:
            data = _read_small(dir_fd, MARKER)
        except FileNotFoundError:
            raise NotReady('%s has no marker yet.' % name)
    try:
        marker = json.loads(data)
    except ValueError as exc:
        raise ItemError('%s: the marker is not JSON: %s' % (name, exc))
    _check_marker(name, marker)
    return marker


def read_item(root, name):
    """Read and check a complete item; never acts on anything.

    :raises NotReady: no marker: still being written, not an error.
    :raises ItemError: anything else wrong (the message says what).
    """
    marker = read_marker(root, name)
    sizes = {}
    with _item_dir(root, name) as dir_fd:
        for wanted in [PLAN_FILE] + [e['file'] for e in _entries(marker)]:
            try:
                if wanted == PLAN_FILE:
                    data = _read_small(dir_fd, PLAN_FILE)
                    continue
                fd = _open_regular(dir_fd, wanted)
            except FileNotFoundError:
                raise ItemError('%s: the marker is there but %s is missing.'
                                % (name, wanted))
            sizes[wanted] = os.fstat(fd).st_size
            os.close(fd)
    want = marker['plan']
    if len(data) != want['size'] or \
            hashlib.sha512(data).hexdigest() != want['sha512']:
        raise ItemError('%s: %s has %d bytes and another sha512 than the '
                        'marker says (%d bytes); it is truncated or damaged.'
                        % (name, PLAN_FILE, len(data), want['size']))
    for entry in _entries(marker):
        if sizes[entry['file']] != entry['size']:
            raise ItemError('%s: %s has %d bytes, the marker says %d; it is '
                            'truncated or damaged.' % (
                                name, entry['file'], sizes[entry['file']],
                                entry['size']))
    try:
        plan = model.Plan.from_dict(json.loads(data))
    except ValueError as exc:  # PlanError is a ValueError, as is bad JSON
        raise ItemError('%s: the plan is invalid: %s' % (name, exc))
    if [s.id for s in plan.servers] != [marker['server_id']]:
        raise ItemError('%s: the plan must hold exactly the server %s of the '
                        'marker.' % (name, marker['server_id']))
    image_ids = [marker['image']['id']] if marker.get('image') else []
    if [i.id for i in plan.images] != image_ids:
        raise ItemError('%s: the plan must hold exactly the image %s of the '
                        'marker.' % (name, image_ids[0] if image_ids
                                     else '(none)'))
    server = plan.servers[0]
    if (server.boot_source == 'volume') == bool(image_ids):
        raise ItemError('%s: the server boots from %s but the item %s an '
                        'image.' % (name, server.boot_source, 'holds'
                                    if image_ids else 'does not hold'))
    planned = sorted(a.volume_id for a in server.volumes)
    carried = sorted(e['id'] for e in marker.get('volumes') or ())
    if planned != carried:
        raise ItemError('%s: the plan gives the server the volumes %s, the '
                        'marker carries %s.' % (
                            name, ', '.join(planned) or 'none',
                            ', '.join(carried) or 'none'))
    return Item(root, name, marker, plan)


def read_status(root, name):
    """The receiver's status of an item (a dict), or None."""
    try:
        with _item_dir(root, name) as dir_fd:
            data = _read_small(dir_fd, STATUS_FILE)
        status = json.loads(data)
    except (FileNotFoundError, ValueError, ItemError):
        return None
    return status if isinstance(status, dict) else None


def write_status(root, name, status):
    """Write ``status`` (a dict) as the item's status.json, atomically."""
    data = json.dumps(dict(status, updated_at=now()), indent=2,
                      sort_keys=True).encode()
    with _item_dir(root, name) as dir_fd:
        atomic_write(dir_fd, STATUS_FILE, data)


def move(root, name, where):
    """Move the item into ``root/where/`` (done or failed); a name that is
    taken there gets a suffix. Returns the new name."""
    if where not in (DONE, FAILED) or not valid_name(name):
        raise ItemError('Cannot move %r to %r.' % (name, where))
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            os.mkdir(where, 0o755, dir_fd=root_fd)
        except FileExistsError:
            pass
        target_fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY
                            | os.O_NOFOLLOW, dir_fd=root_fd)
        try:
            target = name
            for n in range(2, 1000):
                try:
                    os.stat(target, dir_fd=target_fd,
                            follow_symlinks=False)
                except FileNotFoundError:
                    break
                target = '%s.%d' % (name, n)
            os.rename(name, target, src_dir_fd=root_fd,
                      dst_dir_fd=target_fd)
            fsync_dir(target_fd)
        finally:
            os.close(target_fd)
        fsync_dir(root_fd)
    finally:
        os.close(root_fd)
    return target


def list_items(root, where=None):
    """Names of the item directories in ``root`` (or ``root/where``)."""
    directory = os.path.join(root, where) if where else root
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    return sorted(e.name for e in entries
                  if valid_name(e.name) and e.name not in (DONE, FAILED)
                  and e.is_dir(follow_symlinks=False))
