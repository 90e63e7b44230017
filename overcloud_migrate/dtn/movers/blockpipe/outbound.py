"""The sender's helpers: the source file opened, an authenticated
connection to a receiver, the data port probe, the source's sha256 computed in the background, and
reading a chunk's data and sending it (:class:`ChunkReading`, a mixin of
the sender)."""

import errno
import hashlib
import os
import socket
import stat
import threading

from overcloud_migrate.dtn import paths
from overcloud_migrate.dtn.movers import base
from overcloud_migrate.dtn.movers.blockpipe import direct
from overcloud_migrate.dtn.movers.blockpipe import session
from overcloud_migrate.dtn.movers.blockpipe.extents import (
    _clip,
    data_segments)
from overcloud_migrate.dtn.movers.blockpipe.wire import (
    ProtocolError,
    _READ_SIZE,
    _as_key,
    _describe_oserror,
    _keepalive,
    _recv_exact,
    _set_timeouts)


def open_source(source_path, source_root, verb):
    """A read descriptor of the regular file ``source_path``; with
    ``source_root`` (its export root) no symlink below the root is
    followed, whatever was swapped in since the service checked the path.
    ``verb`` says what was refused (``'send'``, ``'sync'``)."""
    try:
        if source_root:
            fd = paths.open_beneath(source_root, os.path.relpath(
                source_path, source_root))
        else:
            fd = os.open(source_path, os.O_RDONLY | os.O_CLOEXEC
                         | os.O_NOFOLLOW)
    except paths.PathRefused as exc:
        raise base.MoverError('cannot %s %s: %s' % (verb, source_path,
                                                   exc)) from None
    except OSError as exc:
        raise base.MoverError('cannot open %s: %s' % (
            source_path, _describe_oserror(exc))) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise base.MoverError('%s is not a regular file' % source_path)
    return fd


def _connect(host, port, key, timeout):
    """An authenticated :class:`~.session.Channel` to a :class:`Receiver`."""
    where = '%s:%s' % (host, port)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise base.MoverUnavailable('cannot reach the data port %s: %s'
                                    % (where, _describe_oserror(exc))) from None
    try:
        _set_timeouts(sock, timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _keepalive(sock)
        return session.client_handshake(sock, key, where)
    except session.AuthFailed:
        sock.close()
        raise
    except ProtocolError as exc:
        sock.close()
        raise base.MoverUnavailable(str(exc)) from None
    except (OSError, EOFError) as exc:
        sock.close()
        raise base.MoverError('handshake with %s failed: %s' % (where, exc)) \
            from None
    except BaseException:
        sock.close()
        raise


def probe(host, port, token=None, timeout=10.0):
    """Check that a data port answers (and accepts ``token`` if given)."""
    if token is None:
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                banner = _recv_exact(sock, len(session.MAGIC))
        except (OSError, EOFError) as exc:
            raise base.MoverUnavailable('cannot reach the data port %s:%s: %s'
                                        % (host, port, exc)) from None
        if banner != session.MAGIC:
            raise base.MoverUnavailable('%s:%s is not a builtin mover data '
                                        'port' % (host, port))
        return
    chan = _connect(host, port, _as_key(token), timeout)
    try:
        chan.send_msg({'op': 'ping'})
        reply = chan.recv_msg()
    except (OSError, EOFError) as exc:
        raise base.MoverUnavailable('data port %s:%s: %s'
                                    % (host, port, exc)) from None
    finally:
        chan.sock.close()
    if not reply or not reply.get('ok'):
        raise base.MoverUnavailable('data port %s:%s answered %r'
                                    % (host, port, reply))


class _BackgroundSha256:
    """The source's sha256, computed while the chunks travel."""

    def __init__(self, fd, path, size):
        self._fd = os.dup(fd)     # the file the sender opened, not the name
        self._path = path
        self._size = size
        self._stop = threading.Event()
        self._digest = None
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='blockpipe-sha256')
        self._thread.start()

    def _run(self):
        try:
            digest = hashlib.sha256()
            view = memoryview(bytearray(4 * 1024 * 1024))
            offset = 0
            while not self._stop.is_set() and offset < self._size:
                n = os.preadv(self._fd, [view], offset)
                if not n:
                    break
                digest.update(view[:n])
                offset += n
            self._digest = digest.hexdigest()
        except OSError as exc:
            self._error = exc
        finally:
            os.close(self._fd)

    def stop(self):
        self._stop.set()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise base.MoverError('cannot hash %s: %s' % (
                self._path, _describe_oserror(self._error)))
        return self._digest


#: a chunk whose data is less than this share of its allocated bytes
#: sends the next chunks through the page cache (see ChunkReading)
ZERO_HEAVY_SHARE = 0.5


class ChunkReading:
    """How a chunk's bytes leave the source file (mixed into the sender,
    which holds ``fd``, ``direct_fd``, ``extents``, ``chunk_size``,
    ``chunk_hash``, the fault sets and a thread-local ``_local``)."""

    #: the last chunk held mostly written zeros (see _prepare_chunk)
    _zero_heavy = False

    def _prepare_chunk(self, index):
        """(segments, loaded): the chunk's data segments, and whether its
        data is in this thread's O_DIRECT buffer already.

        O_DIRECT reads every allocated byte, zeros too, one synchronous
        read at a time; the page cache reads ahead while the probe skips
        the zero blocks.  So after a chunk that held less data than
        ZERO_HEAVY_SHARE of its allocated bytes (a VM image's written
        zeros), the next chunks go through the page cache, until one
        holds more data again.
        """
        start = index * self.chunk_size
        end = start + self._chunk_len(index)
        allocated = sum(hi - lo for lo, hi in _clip(self.extents, start, end))
        segments = None
        loaded = False
        if (self.direct_fd is not None and self.chunk_hash
                and not self._zero_heavy
                and index not in self._corrupt and index not in self._break):
            segments = self._load_direct(start, end)
            loaded = segments is not None
        if segments is None:
            buffer = getattr(self._local, 'buffer', None)
            if buffer is None:
                buffer = self._local.buffer = bytearray(_READ_SIZE)
            # The segment table goes out first, so find the zero blocks
            # now: a probe of each block, the whole block only if the
            # probe is zeros.
            segments = data_segments(self.fd, start, end, buffer=buffer,
                                     probe=True, extents=self.extents)
        if allocated:
            data = sum(length for _, length in segments)
            self._zero_heavy = data < allocated * ZERO_HEAVY_SHARE
        return segments, loaded

    def _load_direct(self, start, end):
        """Read the chunk's data into this thread's aligned buffer with
        O_DIRECT; its segments, or None to read it the ordinary way."""
        buf = getattr(self._local, 'direct', None)
        if buf is None:
            buf = self._local.direct = direct.AlignedBuffer(self.chunk_size)
        try:
            return direct.read_chunk(self.direct_fd, buf, start,
                                     _clip(self.extents, start, end))
        except direct.Unaligned:
            return None

    @staticmethod
    def _send_loaded(sock, data, hasher):
        """Tag and send a segment already in memory, a piece at a time
        (the tag reads the piece, the socket copies it while it is still
        in the CPU cache)."""
        for at in range(0, len(data), _READ_SIZE):
            with data[at:at + _READ_SIZE] as piece:
                hasher.update(piece)
                sock.sendall(piece)

    def _send_hashed(self, sock, offset, length, hasher, view, corrupt):
        """Read a segment once, piece by piece: hash each piece and send
        that same buffer while it is still in the CPU cache.

        What is hashed is exactly what goes out, and the page cache is read
        once (reading to hash, then sendfile, read it twice).
        """
        fd = self.fd
        end = offset + length
        size = len(view)
        while offset < end:
            n = min(size, end - offset)
            with view[:n] as piece:
                if os.preadv(fd, [piece], offset) != n:
                    raise OSError(errno.EIO, 'the file shrank while being '
                                  'sent')
                hasher.update(piece)
                if corrupt:
                    data = bytearray(piece)
                    data[0] ^= 0xFF
                    sock.sendall(data)
                    corrupt = False
                else:
                    sock.sendall(piece)
            offset += n

    def _sendfile(self, sock, offset, length):
        sent = 0
        while sent < length:
            try:
                n = os.sendfile(sock.fileno(), self.fd, offset + sent,
                                length - sent)
            except BlockingIOError:
                raise socket.timeout('send timed out after %ss'
                                     % self.timeout) from None
            if n == 0:
                raise EOFError('connection closed while sending')
            sent += n
        return sent

