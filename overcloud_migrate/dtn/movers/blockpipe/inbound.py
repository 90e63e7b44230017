"""Reading one chunk off a data connection into the file: through memory
(checked before it touches the file) or with splice(2) (checked in place).

A mixin of :class:`~.receiver.Receiver`, kept apart so each module stays
readable; nothing here is used on its own.
"""

import errno
import fcntl
import hmac
import mmap
import os

from overcloud_migrate.dtn.movers.blockpipe import session
from overcloud_migrate.dtn.movers.blockpipe.extents import (
    _hash_file_range,
    _punch_hole)
from overcloud_migrate.dtn.movers.blockpipe.wire import (
    _F_GETPIPE_SZ,
    _F_SETPIPE_SZ,
    _PIPE_SIZE,
    _RECV_PIECE,
    _SCRATCH_SIZE,
    _recv_exact,
    _recv_into)


class ChunkWriting:
    """How a chunk's bytes reach the file (mixed into the Receiver)."""

    def _recv_chunk(self, conn, incoming, segments, hasher, tail, link):
        """Read the chunk into memory, check it, then write it.

        Each piece is hashed right after it arrives, while it is still in
        the CPU cache (hashing the whole chunk afterwards reads it back
        from memory).
        """
        view = link.buffer()
        parts = []
        pos = 0
        for offset, length in segments:
            part = view[pos:pos + length]
            for at in range(0, length, _RECV_PIECE):
                with part[at:at + _RECV_PIECE] as piece:
                    _recv_into(conn, piece)
                    hasher.update(piece)
            parts.append((offset, part))
            pos += length
        digest = _recv_exact(conn, session.TAG_LEN)
        if not hmac.compare_digest(digest, hasher.finish(tail)):
            return False
        try:
            incoming.write(parts)
        except OSError as exc:
            raise WriteError(exc) from None
        return True

    def _splice_chunk(self, conn, incoming, segments, hasher, tail, link):
        """Move the chunk socket -> pipe -> file, then check it in place.

        One copy less than reading it into memory.  A damaged chunk is
        punched out again (the file reads zeros there, as before).  Returns
        None when this socket cannot splice (nothing consumed yet).
        """
        sock_fd = conn.fileno()
        r, w = link.pipe
        first = True
        for offset, length in segments:
            pos = offset
            left = length
            while left:
                try:
                    n = os.splice(sock_fd, w, min(left, link.pipe_size))
                except OSError as exc:
                    if first and exc.errno in (errno.EINVAL, errno.ENOSYS):
                        link.close()
                        return None
                    raise
                first = False
                if not n:
                    raise EOFError('connection closed in the middle of a chunk')
                while n:
                    try:
                        m = os.splice(r, incoming.fd, n, offset_dst=pos)
                    except OSError as exc:
                        raise WriteError(exc) from None
                    n -= m
                    pos += m
                    left -= m
        digest = _recv_exact(conn, session.TAG_LEN)
        for offset, length in segments if hasher.with_data else ():
            _hash_file_range(hasher, incoming.fd, offset, length,
                             link.scratch())
        if hmac.compare_digest(digest, hasher.finish(tail)):
            return True
        for offset, length in segments:
            if not _punch_hole(incoming.fd, offset, length):
                try:
                    os.pwrite(incoming.fd, bytes(length), offset)
                except OSError as exc:
                    raise WriteError(exc) from None
        return False


class WriteError(Exception):
    def __init__(self, cause):
        super().__init__(str(cause))
        self.cause = cause


class Link:
    """Per-connection receive resources: a pipe for splice, or a buffer."""

    def __init__(self, use_splice, chunk_size, chunk_hash=True):
        self.chunk_size = chunk_size
        self.chunk_hash = chunk_hash
        self.pipe = None
        self.pipe_size = 0
        self._buffer = None
        self._map = None
        self._scratch = None
        if use_splice:
            self.pipe = os.pipe2(os.O_CLOEXEC)
            try:
                self.pipe_size = fcntl.fcntl(self.pipe[1], _F_SETPIPE_SZ,
                                             _PIPE_SIZE)
            except OSError:
                self.pipe_size = fcntl.fcntl(self.pipe[1], _F_GETPIPE_SZ)

    def scratch(self):
        if self._scratch is None:
            self._scratch = memoryview(bytearray(_SCRATCH_SIZE))
        return self._scratch

    def buffer(self):
        """The chunk buffer: page-aligned (anonymous memory), so that the
        file can take it with O_DIRECT."""
        if self._buffer is None:
            self._map = mmap.mmap(-1, max(self.chunk_size, 1))
            self._buffer = memoryview(self._map)
        return self._buffer

    def close(self):
        if self._buffer is not None:
            try:
                self._buffer.release()
                self._map.close()
            except BufferError:       # a slice still alive: the GC frees it
                pass
            self._buffer = self._map = None
        if self.pipe is not None:
            for fd in self.pipe:
                os.close(fd)
            self.pipe = None
