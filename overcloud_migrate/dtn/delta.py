"""Block signatures of a disk file, and what changed since the last round.

Warm migration copies a disk while its server runs, in rounds, and at the
cut-over moves only the blocks that changed since the last round.  This
module is the file side of that: no network, no OpenStack.

A :class:`Signature` is one 64-bit digest (xxh3) per block of a file.  Each
side keeps its own, on its own disk:

* the **source** keeps the signature of what the destination holds (the
  digests of the bytes it sent, taken from the very buffers it sent, so a
  block the guest rewrote between the hash pass and the send is caught in
  the next round);
* the **destination** keeps the signature of what it wrote, and checks its
  file against it at the start of a round (:func:`verify`): a block damaged
  since (a corrupted basis) is reported and sent again.

Neither signature crosses the link: a round sends only the changed blocks
and, from the destination, the list of its bad ones.  A signature is saved
only when a round is committed; after a crash both sides still hold the
previous round's signatures, so a re-run of the round sends every block it
had not finished (those differ from the old signature on one side or the
other), and nothing twice that is already right.

Holes of sparse files are not read: their blocks get the digest of a block
of zeros without touching the disk.
"""

import array
import errno
import functools
import os
import struct

import xxhash

DEFAULT_BLOCK_SIZE = 4096
#: bytes read per system call while hashing (a multiple of any block size
#: up to it)
READ_SIZE = 4 * 1024 * 1024
_MAGIC = b'OMSIG1\n\0'
_HEADER = struct.Struct('<8sIQQ')       # magic, block size, file size, count
_TRAILER = struct.Struct('<16s')        # xxh3_128 of header + digests


class SignatureError(ValueError):
    """A signature file that cannot be used; the message says why."""


def _digest(data):
    return xxhash.xxh3_64_intdigest(data)


@functools.lru_cache(maxsize=8)
def _zeros_digest(length):
    return _digest(bytes(length))


class Signature:
    """One 64-bit digest per ``block_size`` bytes of a ``size``-byte file
    (the last block may be short)."""

    def __init__(self, block_size, size, digests=None):
        if block_size <= 0 or READ_SIZE % block_size:
            raise SignatureError('The block size must divide %d bytes, not '
                                 'be %d.' % (READ_SIZE, block_size))
        self.block_size = block_size
        self.size = size
        count = blocks_of(size, block_size)
        if digests is None:
            digests = array.array('Q', [0]) * count
        if len(digests) != count:
            raise SignatureError('A signature of %d bytes in blocks of %d has '
                                 '%d digests, not %d.' % (
                                     size, block_size, count, len(digests)))
        self.digests = digests

    def __eq__(self, other):
        return (isinstance(other, Signature)
                and (self.block_size, self.size, self.digests)
                == (other.block_size, other.size, other.digests))

    def __repr__(self):
        return '<Signature %d bytes in %d blocks of %d>' % (
            self.size, len(self.digests), self.block_size)

    @classmethod
    def of_zeros(cls, size, block_size=DEFAULT_BLOCK_SIZE):
        """The signature of ``size`` bytes of zeros: an empty basis."""
        sig = cls(block_size, size)
        full = _zeros_digest(block_size)
        count = len(sig.digests)
        if count:
            sig.digests = array.array('Q', [full]) * count
            tail = size - (count - 1) * block_size
            if tail != block_size:
                sig.digests[-1] = _digest(bytes(tail))
        return sig

    def block_range(self, index):
        """(offset, length) of block ``index``."""
        offset = index * self.block_size
        return offset, min(self.block_size, self.size - offset)

    # -- on disk ----------------------------------------------------------

    def to_bytes(self):
        body = _HEADER.pack(_MAGIC, self.block_size, self.size,
                            len(self.digests)) + self.digests.tobytes()
        return body + _TRAILER.pack(xxhash.xxh3_128_digest(body))

    @classmethod
    def from_bytes(cls, data, what='signature'):
        if len(data) < _HEADER.size + _TRAILER.size:
            raise SignatureError('The %s is truncated.' % what)
        body, trailer = data[:-_TRAILER.size], data[-_TRAILER.size:]
        magic, block_size, size, count = _HEADER.unpack_from(body)
        if magic != _MAGIC:
            raise SignatureError('The %s is not a signature file.' % what)
        if _TRAILER.unpack(trailer)[0] != xxhash.xxh3_128_digest(body):
            raise SignatureError('The %s is damaged (its checksum does not '
                                 'match).' % what)
        digests = array.array('Q')
        digests.frombytes(body[_HEADER.size:])
        if len(digests) != count:
            raise SignatureError('The %s holds %d digests, its header says %d.'
                                 % (what, len(digests), count))
        return cls(block_size, size, digests)

    def save(self, path):
        """Write atomically: a temporary file, fsync, rename, fsync the dir."""
        path = os.fspath(path)
        tmp = '%s.tmp' % path
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                     | os.O_NOFOLLOW, 0o600)
        try:
            data = memoryview(self.to_bytes())
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(os.path.dirname(path) or '.', os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @classmethod
    def load(cls, path):
        try:
            with open(path, 'rb') as handle:
                data = handle.read()
        except OSError as exc:
            raise SignatureError('Cannot read the signature %s: %s'
                                 % (path, exc.strerror or exc))
        return cls.from_bytes(data, 'signature %s' % path)


def blocks_of(size, block_size):
    return -(-size // block_size)


def _data_ranges(fd, size):
    """(start, end) ranges of a file that may hold data (holes skipped);
    the whole file where the file system cannot tell."""
    ranges, offset = [], 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:      # only a hole is left
                break
            return [(0, size)]                # SEEK_DATA not supported
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        ranges.append((start, end))
        offset = end
    return ranges


def compute(path, block_size=DEFAULT_BLOCK_SIZE, progress=None):
    """The signature of the file at ``path`` as it is now.

    ``progress(done, total)`` is called after each read, if given.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        return compute_fd(fd, block_size, progress, what=path)
    finally:
        os.close(fd)


def compute_fd(fd, block_size=DEFAULT_BLOCK_SIZE, progress=None,
               what='the file', size=None):
    """:func:`compute` for a file already open (read with pread; the
    hole search moves the descriptor's offset); ``what`` names it in
    errors; ``size``: only the file's first ``size`` bytes (default: all
    of it)."""
    if size is None:
        size = os.fstat(fd).st_size
    sig = Signature.of_zeros(size, block_size)
    digests = sig.digests
    buf = bytearray(READ_SIZE)
    view = memoryview(buf)
    for start, end in _data_ranges(fd, size):
        # Whole blocks only: widen the range to block boundaries.
        offset = start - start % block_size
        end = min(size, blocks_of(end, block_size) * block_size)
        while offset < end:
            want = min(READ_SIZE, end - offset)
            got = os.preadv(fd, [view[:want]], offset)
            if got <= 0:
                raise OSError(errno.EIO, 'short read at %d of %s'
                              % (offset, what))
            first = offset // block_size
            digests[first:first + blocks_of(got, block_size)] = \
                array.array('Q', (
                    _digest(view[i:min(i + block_size, got)])
                    for i in range(0, got, block_size)))
            offset += got
            if progress:
                progress(offset, size)
    return sig


def changed(old, new):
    """Indices of the blocks whose digests differ (sizes must agree).

    Compares a stretch of digests at once and looks inside only where the
    stretch differs, so an unchanged disk costs little.
    """
    if (old.block_size, old.size) != (new.block_size, new.size):
        raise SignatureError(
            'The signatures are of different files (%d bytes in blocks of %d '
            'against %d in blocks of %d).' % (old.size, old.block_size,
                                              new.size, new.block_size))
    step = 1024
    result = []
    a, b = old.digests, new.digests
    for first in range(0, len(a), step):
        if a[first:first + step] != b[first:first + step]:
            result.extend(i for i in range(first, min(first + step, len(a)))
                          if a[i] != b[i])
    return result


def extents(indices, sig, max_length=READ_SIZE):
    """Coalesce sorted block indices into (offset, length) extents of at
    most ``max_length`` bytes."""
    result = []
    per = max(1, max_length // sig.block_size)
    run_start = run_end = None
    for index in indices:
        if run_start is not None and index == run_end \
                and index - run_start < per:
            run_end = index + 1
            continue
        if run_start is not None:
            result.append(_extent(sig, run_start, run_end))
        run_start, run_end = index, index + 1
    if run_start is not None:
        result.append(_extent(sig, run_start, run_end))
    return result


def _extent(sig, first, end):
    offset = first * sig.block_size
    return offset, min(end * sig.block_size, sig.size) - offset


def verify(path, sig, progress=None):
    """Indices of the blocks of ``path`` that no longer match ``sig``."""
    return changed(sig, compute(path, sig.block_size, progress))


def read_extent(fd, offset, length, sig):
    """Read an extent to send and record its digests in ``sig`` (the
    signature of what the receiver will hold).  Returns the bytes."""
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise OSError(errno.EIO, 'short read of %d bytes at %d'
                      % (length, offset))
    _record(sig, offset, data)
    return data


def write_extent(fd, offset, data, sig, digests=None):
    """Write a received extent in place and record its digests in ``sig``.

    ``digests`` (the sender's, per block) are checked against the bytes
    first: a mismatch raises before anything is written.
    """
    if digests is not None:
        mine = _digests_of(data, sig.block_size)
        if list(mine) != list(digests):
            raise SignatureError('The extent at %d arrived damaged (its block '
                                 'digests do not match).' % offset)
    view = memoryview(data)
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)
    _record(sig, offset, data)


def record(sig, offset, data):
    """Record in ``sig`` the digests of ``data`` (bytes of the file at
    ``offset``, a block boundary): what was sent or written there."""
    _record(sig, offset, data)


def record_zeros(sig, offset, length):
    """Record in ``sig`` that ``length`` bytes at ``offset`` (a block
    boundary) are zeros, without hashing them: every whole block of zeros
    has the one digest of :meth:`Signature.of_zeros`."""
    _check_extent(sig, offset, length)
    if not length:
        return
    first = offset // sig.block_size
    count = blocks_of(length, sig.block_size)
    sig.digests[first:first + count] = array.array(
        'Q', [_zeros_digest(sig.block_size)]) * count
    tail = length - (count - 1) * sig.block_size
    if tail != sig.block_size:      # the file's short last block
        sig.digests[first + count - 1] = _digest(bytes(tail))


def _digests_of(data, block_size):
    view = memoryview(data)
    return array.array('Q', (_digest(view[i:i + block_size])
                             for i in range(0, len(view), block_size)))


def _check_extent(sig, offset, length):
    if offset % sig.block_size:
        raise SignatureError('An extent must start on a block boundary, not '
                             'at %d.' % offset)
    end = offset + length
    if end > sig.size or (length % sig.block_size and end != sig.size):
        raise SignatureError('An extent must end on a block boundary or at '
                             'the end of the file, not at %d.' % end)


def _record(sig, offset, data):
    _check_extent(sig, offset, len(data))
    first = offset // sig.block_size
    digests = _digests_of(data, sig.block_size)
    sig.digests[first:first + len(digests)] = digests
