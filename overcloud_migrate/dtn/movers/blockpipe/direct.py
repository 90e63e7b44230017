"""O_DIRECT helpers of the builtin mover: a second descriptor of an open
file, page-aligned buffers, and reading one chunk of the source into memory
with the zero blocks found there.

Why: on a disk, the page cache costs the process that moves the bytes more
CPU than anything else it does (a copy in, a copy out, and for a writer
the writeback of every dirty page).  With ``O_DIRECT`` the device reads
into, or writes from, the process's own buffer: the receiver writes each
checked chunk straight from the buffer it received it into, and the sender
reads each chunk straight into the buffer it tags and sends from.
"""

import ctypes
import errno
import os

from overcloud_migrate.dtn.movers.blockpipe.extents import (
    _is_zero,
    add_segment)
from overcloud_migrate.dtn.movers.blockpipe.wire import ZERO_BLOCK

#: O_DIRECT needs offsets, lengths and buffer addresses aligned to the
#: device's logical block: a page is a multiple of every such block
ALIGN = 4096


def open_direct(fd, flags=os.O_WRONLY):
    """A second descriptor of the file ``fd`` with O_DIRECT, or None.

    Reopened through ``/proc/self/fd`` (the same inode, whatever its name
    points to by now) and checked to be that inode.  None where the
    platform, /proc or the file system refuses O_DIRECT.
    """
    flag = getattr(os, 'O_DIRECT', 0)
    if not flag:
        return None
    try:
        direct = os.open('/proc/self/fd/%d' % fd, flags | os.O_CLOEXEC | flag)
    except OSError:
        return None
    mine, theirs = os.fstat(fd), os.fstat(direct)
    if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
        os.close(direct)
        return None
    return direct


def address(view):
    """Address of a writable buffer's first byte; None if not known."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(view))
    except (TypeError, ValueError):
        return None


def round_up(n, align=ALIGN):
    return -(-n // align) * align


class AlignedBuffer:
    """A bytearray with a page-aligned window of ``size`` bytes in it
    (a bytearray, so the zero-block test compares in place)."""

    def __init__(self, size):
        self.size = round_up(max(size, 1))
        self.array = bytearray(self.size + ALIGN)
        self.pad = (-address(self.array)) % ALIGN
        self.view = memoryview(self.array)[self.pad:self.pad + self.size]

    def release(self):
        self.view.release()


class Unaligned(Exception):
    """This chunk cannot be read with O_DIRECT (its start is not aligned,
    or the file system refused the read); read it the ordinary way."""


def read_chunk(direct_fd, buf, start, ranges, zero_block=ZERO_BLOCK):
    """Read the data ``ranges`` [(lo, hi)] of the chunk starting at
    ``start`` into ``buf`` (byte ``x`` of the file at ``buf.view[x -
    start]``) with one O_DIRECT read per range; the segments
    [(offset, length)] left once all-zero blocks (aligned to the file)
    are taken out, as :func:`~.extents.data_segments` finds them.

    Raises :class:`Unaligned` for a chunk O_DIRECT cannot take, OSError
    (EIO) when the file shrank.
    """
    if start % ALIGN:
        raise Unaligned()
    segments = []
    for lo, hi in ranges:
        first = lo - lo % ALIGN
        last = round_up(hi)
        if last - start > buf.size:
            raise Unaligned()
        with buf.view[first - start:last - start] as window:
            try:
                got = os.preadv(direct_fd, [window], first)
            except OSError as exc:
                if exc.errno == errno.EINVAL:
                    raise Unaligned() from None
                raise
        if got < hi - first:
            raise OSError(errno.EIO, 'the file shrank while being read')
        pos = lo
        while pos < hi:
            block_end = min(hi, (pos // zero_block + 1) * zero_block)
            if not _is_zero(buf.array, buf.pad + pos - start,
                            buf.pad + block_end - start):
                add_segment(segments, pos, block_end)
            pos = block_end
    return segments
