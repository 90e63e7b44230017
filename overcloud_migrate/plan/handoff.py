"""The handoff item: one server's plan and image, left in a directory.

``openstack overcloud migrate --handoff DIR`` writes one item per server;
the Receiver (:mod:`overcloud_migrate.receiver`) at the destination picks
it up.  An item is a directory ``DIR/<migration id>-<server id>/``::

    plan.json     the server and its network world (a Plan, JSON)
    image.<fmt>   the snapshot's bytes (<fmt> is its disk format)
    COMPLETE      the marker, written last: size and sha512 of both files
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

from overcloud_migrate import exceptions
from overcloud_migrate.plan import atomic
from overcloud_migrate.plan import model

MARKER = 'COMPLETE'
PLAN_FILE = 'plan.json'
STATUS_FILE = 'status.json'
IMAGE_PREFIX = 'image.'
DONE = 'done'
FAILED = 'failed'
MARKER_VERSION = 1
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


def image_file(disk_format):
    fmt = (disk_format or 'raw').lower()
    if not _FORMAT.match(fmt):
        raise ItemError('The disk format %r cannot name an image file.'
                        % disk_format)
    return IMAGE_PREFIX + fmt


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
    :class:`model.Image`, its snapshot) as the plan's only image.

    The network world (networks, subnets, routers, security groups) stays
    whole; ports, floating IPs, flavors and keypairs are the server's own.
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
        images=[image],
        ports=[copy.deepcopy(p) for p in plan.ports if p.id in ports],
        floating_ips=[copy.deepcopy(f) for f in plan.floating_ips
                      if f.port_id in ports],
        servers=[server])
    part.check_references()
    return part


def plan_bytes(plan):
    return json.dumps(plan.to_dict(), indent=2, sort_keys=True).encode()


def marker_bytes(migration_id, server, plan_data, image_name, image_size,
                 image_sha512, image_id):
    """The marker's content: what the reader checks before acting."""
    return json.dumps({
        'version': MARKER_VERSION,
        'migration_id': migration_id,
        'server_id': server.id,
        'server_name': server.name,
        'written_at': now(),
        'plan': {'file': PLAN_FILE, 'size': len(plan_data),
                 'sha512': hashlib.sha512(plan_data).hexdigest()},
        'image': {'file': image_name, 'size': image_size,
                  'sha512': image_sha512, 'id': image_id},
    }, indent=2, sort_keys=True).encode()


# -- reading -------------------------------------------------------------


class Item:
    """A complete item, checked: its marker, plan, server and image."""

    def __init__(self, root, name, marker, plan):
        self.root = root
        self.name = name
        self.marker = marker
        self.plan = plan
        self.migration_id = marker['migration_id']
        self.server = plan.servers[0]
        self.image = plan.images[0]
        self.image_name = marker['image']['file']
        self.size = marker['image']['size']
        self.sha512 = marker['image']['sha512']

    def open_image(self):
        """The image file, opened inside the item (no link followed)."""
        with _item_dir(self.root, self.name) as dir_fd:
            fd = _open_regular(dir_fd, self.image_name)
        size = os.fstat(fd).st_size
        if size != self.size:
            os.close(fd)
            raise ItemError('%s: the image %s has %d bytes, the marker says '
                            '%d.' % (self.name, self.image_name, size,
                                     self.size))
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

    need(isinstance(marker, dict), 'not a JSON object')
    need(marker.get('version') == MARKER_VERSION,
         'version %r, expected %d' % (marker.get('version'), MARKER_VERSION))
    for key in ('migration_id', 'server_id'):
        need(isinstance(marker.get(key), str) and marker[key], key)
    for part, fixed in (('plan', PLAN_FILE), ('image', None)):
        entry = marker.get(part)
        need(isinstance(entry, dict), part)
        need(isinstance(entry.get('size'), int)
             and not isinstance(entry['size'], bool) and entry['size'] >= 0,
             '%s.size' % part)
        need(isinstance(entry.get('sha512'), str)
             and _SHA512.match(entry['sha512']), '%s.sha512' % part)
        need(entry.get('file') == fixed if fixed else
             isinstance(entry.get('file'), str)
             and entry['file'].startswith(IMAGE_PREFIX)
             and valid_name(entry['file']), '%s.file' % part)
    need(isinstance(marker['image'].get('id'), str), 'image.id')


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
    with _item_dir(root, name) as dir_fd:
        try:
            data = _read_small(dir_fd, PLAN_FILE)
        except FileNotFoundError:
            raise ItemError('%s: the marker is there but %s is missing.'
                            % (name, PLAN_FILE))
        try:
            image_fd = _open_regular(dir_fd, marker['image']['file'])
        except FileNotFoundError:
            raise ItemError('%s: the marker is there but %s is missing.'
                            % (name, marker['image']['file']))
        image_size = os.fstat(image_fd).st_size
        os.close(image_fd)
    want = marker['plan']
    if len(data) != want['size'] or \
            hashlib.sha512(data).hexdigest() != want['sha512']:
        raise ItemError('%s: %s has %d bytes and another sha512 than the '
                        'marker says (%d bytes); it is truncated or damaged.'
                        % (name, PLAN_FILE, len(data), want['size']))
    if image_size != marker['image']['size']:
        raise ItemError('%s: %s has %d bytes, the marker says %d; it is '
                        'truncated or damaged.' % (
                            name, marker['image']['file'], image_size,
                            marker['image']['size']))
    try:
        plan = model.Plan.from_dict(json.loads(data))
    except ValueError as exc:  # PlanError is a ValueError, as is bad JSON
        raise ItemError('%s: the plan is invalid: %s' % (name, exc))
    if [s.id for s in plan.servers] != [marker['server_id']]:
        raise ItemError('%s: the plan must hold exactly the server %s of the '
                        'marker.' % (name, marker['server_id']))
    if [i.id for i in plan.images] != [marker['image']['id']]:
        raise ItemError('%s: the plan must hold exactly the image %s of the '
                        'marker.' % (name, marker['image']['id']))
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
