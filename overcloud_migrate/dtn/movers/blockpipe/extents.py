"""The file side of the builtin mover: data extents, zero blocks, hashing
file ranges and punching holes (so sparse files stay sparse)."""

import bisect
import ctypes
import ctypes.util
import errno
import hashlib
import os

from overcloud_migrate.dtn.movers.blockpipe.wire import (
    ZERO_BLOCK,
    _ZEROS,
    _ZERO_PROBE)


# -- hole punching (so a resumed .part stays sparse and clean) ----------------

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_libc = None


_SYNC_FILE_RANGE_WRITE = 2


def _c():
    """The C library, its calls typed (loaded once)."""
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6',
                           use_errno=True)
        libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int,
                                   ctypes.c_int64, ctypes.c_int64]
        if hasattr(libc, 'sync_file_range'):
            libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64,
                                             ctypes.c_int64, ctypes.c_uint]
        _libc = libc
    return _libc


def _punch_hole(fd, offset, length):
    """Deallocate a range (reads back as zeros); False if not supported."""
    mode = _FALLOC_FL_KEEP_SIZE | _FALLOC_FL_PUNCH_HOLE
    return _c().fallocate(fd, mode, offset, length) == 0


def start_writeback(fd, offset, length):
    """Ask the kernel to start writing a range just written back to the
    disk now, without waiting (Linux ``sync_file_range`` with
    ``SYNC_FILE_RANGE_WRITE``; Python's ``os`` has no such call).  The
    disk then writes while more data arrives, and the final fdatasync finds
    little left.  False where the call is missing or refused (nothing
    changes then: the fdatasync still writes everything)."""
    call = getattr(_c(), 'sync_file_range', None)
    if call is None:
        return False
    return call(fd, offset, length, _SYNC_FILE_RANGE_WRITE) == 0


def _hash_file_range(hasher, fd, offset, length, view):
    """Feed bytes [offset, offset+length) of a file to ``hasher``.

    Read through ``view``, a small reused buffer that stays in the CPU
    cache (cheaper here than mapping and unmapping the range).
    """
    end = offset + length
    while offset < end:
        n = os.preadv(fd, [view[:min(len(view), end - offset)]], offset)
        if n <= 0:
            raise OSError(errno.EIO, 'short read while checking a chunk')
        hasher.update(view[:n])
        offset += n


def _sha256_fd(fd, size, block=4 * 1024 * 1024):
    digest = hashlib.sha256()
    buf = bytearray(block)
    view = memoryview(buf)
    offset = 0
    while offset < size:
        n = os.preadv(fd, [view[:min(block, size - offset)]], offset)
        if n <= 0:
            raise OSError(errno.EIO, 'short read while hashing')
        digest.update(view[:n])
        offset += n
    return digest.hexdigest()


def data_segments(fd, start, end, zero_block=ZERO_BLOCK, hasher=None,
                  buffer=None, probe=False, extents=None):
    """(offset, length) of the non-zero data in [start, end) of a file.

    Holes come from SEEK_DATA/SEEK_HOLE (never read); inside data extents,
    blocks of ``zero_block`` bytes (aligned to the file) that are all zeros
    are left out too.  ``hasher`` (if given) is fed the data of the
    segments, in order.  The data is read with pread into ``buffer`` (a
    bytearray, a multiple of ``zero_block``; small, so it stays in the CPU
    cache): no
    mapping, so a source truncated meanwhile gives an error, not SIGBUS.
    ``probe`` (no hasher): read only the first bytes of each block, and the
    whole block only when those are zeros.  ``extents`` (from
    :func:`data_extents` over the whole file) saves the lseeks: on tmpfs a
    SEEK_HOLE walks the page cache up to the next hole, so asking once per
    chunk costs time in proportion to the file size, for every chunk.
    """
    ranges = (_clip(extents, start, end) if extents is not None
              else _data_extents(fd, start, end))
    if probe:
        return _probe_segments(fd, ranges, zero_block)
    if buffer is None:
        buffer = bytearray(2 * zero_block)
    view = memoryview(buffer)
    segments = []
    try:
        for data_start, data_end in ranges:
            pos = data_start
            while pos < data_end:
                # Read up to the buffer size, ending on a block boundary.
                limit = min(data_end, pos + len(buffer))
                if limit < data_end:
                    limit -= limit % zero_block
                    if limit <= pos:
                        limit = min(data_end, pos + zero_block)
                read_at = pos
                if os.preadv(fd, [view[:limit - read_at]], read_at) \
                        != limit - read_at:
                    raise OSError(errno.EIO, 'the file shrank while being read')
                while pos < limit:
                    block_end = min(limit,
                                    (pos // zero_block + 1) * zero_block)
                    if not _is_zero(buffer, pos - read_at, block_end - read_at):
                        if hasher is not None:
                            with view[pos - read_at:block_end - read_at] \
                                    as block:
                                hasher.update(block)
                        if segments and sum(segments[-1]) == pos:
                            segments[-1] = (segments[-1][0],
                                            block_end - segments[-1][0])
                        else:
                            segments.append((pos, block_end - pos))
                    pos = block_end
    finally:
        view.release()
    return segments


def _probe_segments(fd, ranges, zero_block):
    segments = []
    probe = len(_ZERO_PROBE)
    for data_start, data_end in ranges:
        pos = data_start
        while pos < data_end:
            block_end = min(data_end, (pos // zero_block + 1) * zero_block)
            head = os.pread(fd, min(probe, block_end - pos), pos)
            data = head != _ZERO_PROBE[:len(head)]
            if not data and block_end - pos > probe:
                rest = os.pread(fd, block_end - pos, pos)
                data = rest != (_ZEROS if len(rest) == ZERO_BLOCK
                                else bytes(len(rest)))
            if data:
                add_segment(segments, pos, block_end)
            pos = block_end
    return segments


def add_segment(segments, start, end):
    """Append the data segment [start, end) to ``segments`` ([(offset,
    length)]), merged with the last one where they touch."""
    if segments and sum(segments[-1]) == start:
        segments[-1] = (segments[-1][0], end - segments[-1][0])
    else:
        segments.append((start, end - start))


def data_extents(fd, size):
    """The data extents [(start, end)] of a whole file, holes left out.

    A file with at least ``size`` bytes allocated has no hole worth
    looking for: it is one extent, without the lseeks (on tmpfs a
    SEEK_HOLE walks every page of the file).  Were a small hole hidden by
    blocks counted for metadata or preallocation, it still reads as zeros,
    and the zero-block scan leaves it out.
    """
    if size and os.fstat(fd).st_blocks * 512 >= size:
        return [(0, size)]
    return list(_data_extents(fd, 0, size))


def _clip(extents, start, end):
    """The parts of sorted, disjoint ``extents`` inside [start, end)."""
    i = max(0, bisect.bisect_right(extents, (start, float('inf'))) - 1)
    while i < len(extents) and extents[i][0] < end:
        lo, hi = extents[i]
        if hi > start:
            yield max(lo, start), min(hi, end)
        i += 1


def _data_extents(fd, start, end):
    pos = start
    while pos < end:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:      # only a hole up to the end
                return
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                yield pos, end                # no hole support: scan it all
                return
            raise
        if data >= end:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, hole
        pos = hole


def _is_zero(buffer, start, end):
    """Whether bytearray ``buffer[start:end]`` is all zeros, without a copy
    (``startswith`` compares in place; a short probe first)."""
    length = end - start
    if not buffer.startswith(_ZERO_PROBE[:length], start, end):
        return False
    return buffer.startswith(
        _ZEROS if length == ZERO_BLOCK else bytes(length), start, end)
