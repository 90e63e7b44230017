"""A guest that changes its disk: random blocks rewritten in place.

Warm migration copies a disk while its server runs, then moves only what
changed; its tests and benchmarks need a server whose disk changes between
rounds.  ``overcloud-devcloud guest write`` is that guest: it picks blocks
of the server's disk file with a seeded generator and overwrites them with
seeded random bytes, in place (no truncation, no new file, the same inode,
as a guest writing to its block device would), then fsyncs.

The same seed, percentage and disk size always pick the same blocks and
write the same bytes, so a test can say exactly how many bytes changed.
"""

import dataclasses
import json
import os
import random

DEFAULT_BLOCK_SIZE = 4096


class GuestError(ValueError):
    """The disk cannot be written as asked; the message says why."""


@dataclasses.dataclass
class WriteReport:
    disk: str
    disk_bytes: int
    block_size: int
    blocks_changed: int
    bytes_changed: int
    #: the byte offsets of the blocks written, in ascending order
    offsets: list


def disk_of(instances_dir, server_id, volume_id=None):
    """The file the guest of ``server_id`` sees as its root disk, or as the
    volume ``volume_id``.

    The test-bed Nova driver records each server's volumes (device, file,
    format) in ``<instances_dir>/<server id>.json``; a server booted from a
    volume has its root volume's file as its disk.  Only raw files are
    written: after a snapshot the active file of a volume is a qcow2
    overlay, whose bytes are not the guest's.
    """
    try:
        with open(os.path.join(instances_dir, '%s.json' % server_id)) as fh:
            record = json.load(fh)
    except (OSError, ValueError) as exc:
        raise GuestError('Server %s has no readable record in %s (is it on '
                         'this compute host?): %s'
                         % (server_id, instances_dir, exc))
    volumes = record.get('volumes') or {}
    if volume_id is None:
        roots = [v for v in volumes.values() if v.get('root')]
        if not roots:
            return os.path.join(instances_dir, '%s.disk' % server_id)
        entry, what = roots[0], 'root volume'
    else:
        entry, what = volumes.get(volume_id), 'volume %s' % volume_id
        if entry is None:
            raise GuestError('Volume %s is not attached to server %s '
                             '(attached: %s).' % (
                                 volume_id, server_id,
                                 ', '.join(sorted(volumes)) or 'none'))
    if entry.get('format', 'raw') != 'raw':
        raise GuestError('The %s of server %s is a %s file now (a snapshot '
                         'overlay); only raw volume files can be written.'
                         % (what, server_id, entry.get('format')))
    return entry['device_path']


def pick_blocks(disk_bytes, percent, seed, block_size=DEFAULT_BLOCK_SIZE):
    """Offsets of the blocks ``percent`` % of the disk is made of.

    At least one block when ``percent`` > 0; whole blocks only (a tail
    shorter than ``block_size`` is never picked).
    """
    if block_size <= 0:
        raise GuestError('The block size must be positive, not %d.'
                         % block_size)
    if not 0 <= percent <= 100:
        raise GuestError('The percentage of blocks to change must be between '
                         '0 and 100, not %s.' % percent)
    blocks = disk_bytes // block_size
    if blocks == 0:
        raise GuestError('The disk holds %d bytes, less than one block of %d.'
                         % (disk_bytes, block_size))
    count = round(blocks * percent / 100.0)
    if percent > 0:
        count = max(1, count)
    chosen = random.Random(seed).sample(range(blocks), count)
    return sorted(index * block_size for index in chosen)


def write(disk, percent, seed, block_size=DEFAULT_BLOCK_SIZE):
    """Overwrite ``percent`` % of the blocks of the file ``disk`` in place.

    Returns a :class:`WriteReport`.  The bytes written are random (seeded),
    so a block practically never keeps its old content.
    """
    try:
        fd = os.open(disk, os.O_WRONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise GuestError('Cannot open the disk %s for writing: %s'
                         % (disk, exc.strerror or exc))
    try:
        size = os.fstat(fd).st_size
        offsets = pick_blocks(size, percent, seed, block_size)
        data = random.Random('%s:data' % seed)
        for offset in offsets:
            os.pwrite(fd, data.randbytes(block_size), offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    return WriteReport(disk=str(disk), disk_bytes=size,
                       block_size=block_size, blocks_changed=len(offsets),
                       bytes_changed=len(offsets) * block_size,
                       offsets=offsets)
