"""The source side of the builtin mover: :func:`send` (parallel streams over
a shared chunk queue) and :func:`probe`."""

import collections
import hashlib
import logging
import os
import socket
import threading
import time

from overcloud_migrate.dtn.movers import base
from overcloud_migrate.dtn.movers.blockpipe.wire import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_TIMEOUT,
    Faults,
    MAX_CHUNK_SIZE,
    MAX_STREAMS,
    MIN_CHUNK_SIZE,
    ProtocolError,
    WINDOW,
    _CHUNK,
    _LinkBroken,
    _READ_SIZE,
    _SEG,
    _TIMEOUTS,
    _as_key,
    _chunk_count,
    _decode_bitmap,
    _quiet_close,
    _set_timeouts)
from overcloud_migrate.dtn.movers.blockpipe import direct
from overcloud_migrate.dtn.movers.blockpipe import outbound
from overcloud_migrate.dtn.movers.blockpipe import session
from overcloud_migrate.dtn.movers.blockpipe.outbound import (
    _BackgroundSha256,
    _connect)
from overcloud_migrate.dtn.movers.blockpipe.extents import (
    data_extents)


LOG = logging.getLogger(__name__)


# -- the sender ---------------------------------------------------------------


class _Stream:
    """One data connection and its acknowledgement reader."""

    def __init__(self, chan):
        self.chan = chan
        self.sock = chan.sock
        self.pending = {}
        self.window = threading.Semaphore(WINDOW)
        self.broken = threading.Event()
        self.error = None
        self.reader = None


class _Sender(outbound.ChunkReading):

    def __init__(self, source_path, host, port, dest_path, key, streams,
                 chunk_size, verify_sha256, progress, cancel, timeout,
                 retries, keep_partial, faults, chunk_hash=True,
                 source_root=None, direct_io=True):
        self.source_path = str(source_path)
        self.host = host
        self.port = port
        self.dest_path = dest_path
        self.key = key
        self.streams = max(1, min(int(streams), MAX_STREAMS))
        self.chunk_size = chunk_size
        self.verify_sha256 = verify_sha256
        self.progress = progress
        self.cancel = cancel if cancel is not None else threading.Event()
        self.timeout = timeout
        self.retries = retries
        self.keep_partial = keep_partial
        self.source_root = source_root
        self.faults = faults or Faults()
        self.chunk_hash = chunk_hash
        self.direct_io = direct_io
        self.direct_fd = None
        self._corrupt = set(self.faults.corrupt_chunks)
        self._break = set(self.faults.break_chunks)
        self.where = '%s:%s' % (host, port)
        self.cv = threading.Condition()
        self.queue = collections.deque()
        self.done = None
        self.remaining = 0
        self.logical_done = 0
        self.acks = 0
        self.attempts = collections.Counter()
        self.error = None
        self.stopped = False
        self.wire = 0
        self.live = set()
        self.tid = None
        self._local = threading.local()

    # -- bookkeeping (all under self.cv) --------------------------------

    def _chunk_len(self, index):
        return min(self.chunk_size, self.size - index * self.chunk_size)

    def _mark_done(self, index, report=True):
        if self.done[index]:
            return
        self.done[index] = 1
        self.remaining -= 1
        self.logical_done += self._chunk_len(index)
        if report and self.progress is not None:
            self.progress(self.logical_done)

    def _requeue(self, index):
        if not self.done[index]:
            self.queue.appendleft(index)

    def _fail(self, exc):
        with self.cv:
            if self.error is None:
                self.error = exc
            self.stopped = True
            self.cv.notify_all()
            live = list(self.live)
        for stream in live:
            stream.broken.set()
            _quiet_close(stream.sock)

    def _next(self, stream):
        """Next chunk index for ``stream``; None when there is nothing left."""
        with self.cv:
            while True:
                if self.stopped or self.remaining == 0:
                    return None
                if stream.broken.is_set():
                    raise _LinkBroken()
                while self.queue:
                    index = self.queue.popleft()
                    if not self.done[index]:
                        return index
                self.cv.wait(0.1)
                if self.cancel.is_set():
                    self.stopped = True
                    self.cv.notify_all()

    # -- the transfer -----------------------------------------------------

    def run(self):
        fd = outbound.open_source(self.source_path, self.source_root, 'send')
        try:
            st = os.fstat(fd)
            self.size = st.st_size
            self.mtime = st.st_mtime_ns
            self.fd = fd
            self.extents = data_extents(fd, self.size)
            if self.direct_io:
                self.direct_fd = direct.open_direct(fd, os.O_RDONLY)
            return self._run()
        finally:
            if self.direct_fd is not None:
                os.close(self.direct_fd)
                self.direct_fd = None
            os.close(fd)

    def _identity(self):
        text = '%s|%d|%d|%d' % (os.path.abspath(self.source_path), self.size,
                                self.mtime, self.chunk_size)
        return hashlib.sha256(text.encode('utf-8')).hexdigest()

    def _run(self):
        started = time.monotonic()
        nchunks = _chunk_count(self.size, self.chunk_size)
        control = _connect(self.host, self.port, self.key, self.timeout)
        self.control = control
        try:
            control.send_msg({'op': 'open', 'path': self.dest_path,
                              'size': self.size,
                              'data_bytes': self._data_bytes(),
                              'chunk_size': self.chunk_size,
                              'identity': self._identity()})
            reply = control.recv_msg()
            if reply is None or not reply.get('ok'):
                raise base.MoverError('%s refused %s: %s' % (
                    self.where, self.dest_path,
                    (reply or {}).get('error', 'connection closed')))
            self.tid = reply['tid']
            good = _decode_bitmap(reply['good'], nchunks)
            self.done = bytearray(nchunks)
            self.remaining = nchunks
            with self.cv:
                for index in range(nchunks):
                    if good[index]:
                        self._mark_done(index, report=False)
                    else:
                        self.queue.append(index)
                if self.logical_done and self.progress is not None:
                    self.progress(self.logical_done)
            hasher = None
            if self.verify_sha256:
                hasher = _BackgroundSha256(self.fd, self.source_path,
                                           self.size)
            try:
                self._move()
                if self.cancel.is_set():
                    self._abort(discard=not self.keep_partial)
                    raise base.TransferCancelled(
                        'transfer of %s to %s:%s was cancelled'
                        % (self.source_path, self.where, self.dest_path))
                if self.error is not None:
                    raise self.error
                digest = hasher.result() if hasher else None
            finally:
                if hasher is not None:
                    hasher.stop()
            self._check_unchanged()
            self._commit(digest)
            return base.TransferResult(
                bytes=self.size, bytes_on_wire=self.wire,
                seconds=time.monotonic() - started, sha256=digest)
        except (OSError, EOFError) as exc:
            raise base.MoverError('transfer of %s to %s:%s failed: %s' % (
                self.source_path, self.where, self.dest_path, exc)) from None
        finally:
            _quiet_close(control.sock)

    def _data_bytes(self):
        """Bytes in data extents: what the receiver may have to store."""
        if self.extents is None:
            return self.size
        return sum(end - start for start, end in self.extents)

    def _move(self):
        if self.remaining == 0:
            return
        workers = [threading.Thread(target=self._worker, daemon=True,
                                    name='blockpipe-send-%d' % i)
                   for i in range(min(self.streams, self.remaining))]
        for worker in workers:
            worker.start()
        with self.cv:
            while self.remaining and not self.stopped:
                self.cv.wait(0.1)
                if self.cancel.is_set():
                    self.stopped = True
                    self.cv.notify_all()
            live = list(self.live) if self.stopped else []
        for stream in live:
            stream.broken.set()
            _quiet_close(stream.sock)
        for worker in workers:
            worker.join()

    def _worker(self):
        failures = 0
        while True:
            with self.cv:
                if self.stopped or self.remaining == 0:
                    return
            try:
                stream = self._attach()
            except base.MoverError as exc:
                failures += 1
                if failures > self.retries:
                    self._fail(exc)
                    return
                self.cancel.wait(min(0.1 * failures, 1.0))
                continue
            acked_before = self.acks
            try:
                self._pump(stream)
                self._close_stream(stream, graceful=True)
                return
            except _LinkBroken:
                pass
            except OSError as exc:
                stream.error = stream.error or exc
            self._close_stream(stream, graceful=False)
            if self.acks > acked_before:
                failures = 0
            failures += 1
            if failures > self.retries:
                self._fail(base.MoverError(
                    'connection to %s for %s lost %d times, last: %s'
                    % (self.where, self.dest_path, failures,
                       stream.error or 'connection closed')))
                return
            LOG.info('stream to %s broke (%s); reconnecting', self.where,
                     stream.error or 'connection closed')

    def _attach(self):
        chan = _connect(self.host, self.port, self.key, self.timeout)
        sock = chan.sock
        try:
            chan.send_msg({'op': 'data', 'tid': self.tid,
                           'chunk_hash': self.chunk_hash})
            reply = chan.recv_msg()
            if reply is None or not reply.get('ok'):
                raise base.MoverError('%s refused a stream for %s: %s' % (
                    self.where, self.dest_path,
                    (reply or {}).get('error', 'connection closed')))
            good = _decode_bitmap(reply['good'], len(self.done))
        except (OSError, EOFError) as exc:
            _quiet_close(sock)
            raise base.MoverError('stream to %s failed: %s'
                                  % (self.where, exc)) from None
        except BaseException:
            _quiet_close(sock)
            raise
        stream = _Stream(chan)
        with self.cv:
            # Chunks that landed although their acknowledgement was lost.
            for index in range(len(good)):
                if good[index] and not self.done[index]:
                    self._mark_done(index)
            self.live.add(stream)
            self.cv.notify_all()
        stream.reader = threading.Thread(target=self._read_acks,
                                         args=(stream,), daemon=True,
                                         name='blockpipe-acks')
        stream.reader.start()
        return stream

    def _close_stream(self, stream, graceful):
        if graceful:
            try:
                stream.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        else:
            stream.broken.set()
            if stream.sock.fileno() != -1:
                # Let the reader collect what the receiver still acknowledges.
                try:
                    stream.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        stream.reader.join()
        _quiet_close(stream.sock)
        with self.cv:
            self.live.discard(stream)
            for index in list(stream.pending):
                self._requeue(index)
            stream.pending.clear()
            self.cv.notify_all()

    def _read_acks(self, stream):
        try:
            while True:
                try:
                    msg = stream.chan.recv_msg()
                except _TIMEOUTS:
                    with self.cv:
                        idle = not stream.pending
                    if idle and not stream.broken.is_set():
                        continue
                    raise
                if msg is None:
                    return
                self._on_ack(stream, msg)
        except (OSError, EOFError, ValueError, ProtocolError) as exc:
            if stream.error is None:
                stream.error = exc
        finally:
            stream.broken.set()
            stream.window.release(WINDOW)
            with self.cv:
                self.cv.notify_all()

    def _on_ack(self, stream, msg):
        index = msg.get('ack')
        if not isinstance(index, int) or index not in stream.pending:
            raise ProtocolError('unexpected acknowledgement %r' % (msg,))
        stop = False
        exc = None
        with self.cv:
            del stream.pending[index]
            if msg.get('ok'):
                self._mark_done(index)
                self.acks += 1
                limit = self.faults.stop_after_acks
                stop = limit is not None and self.acks >= limit
            elif msg.get('fatal'):
                exc = base.MoverError('%s: %s' % (self.where, msg.get('error')))
            else:
                self.attempts[index] += 1
                if self.attempts[index] > self.retries:
                    exc = base.MoverError(
                        'chunk %d of %s arrived damaged at %s %d times: %s'
                        % (index, self.source_path, self.where,
                           self.attempts[index], msg.get('error')))
                else:
                    LOG.info('resending chunk %d of %s: %s', index,
                             self.source_path, msg.get('error'))
                    self._requeue(index)
            self.cv.notify_all()
        stream.window.release()
        if stop:
            self._fail(base.MoverError(
                'connection to %s lost (injected fault after %d chunks)'
                % (self.where, self.acks)))
        elif exc is not None:
            self._fail(exc)

    def _pump(self, stream):
        while True:
            index = self._next(stream)
            if index is None:
                return
            # Read the chunk before waiting for the window: the disk works
            # while the receiver still handles the chunks in flight.
            try:
                prepared = self._prepare_chunk(index)
            except BaseException:
                with self.cv:
                    self._requeue(index)
                    self.cv.notify_all()
                raise
            while not stream.window.acquire(timeout=0.1):
                if stream.broken.is_set() or self.stopped:
                    break
            with self.cv:
                if stream.broken.is_set() or self.stopped:
                    self._requeue(index)
                    self.cv.notify_all()
                    raise _LinkBroken()
                stream.pending[index] = True
            self._send_chunk(stream, index, prepared)

    def _send_chunk(self, stream, index, prepared):
        start = index * self.chunk_size
        segments, loaded = prepared
        buffer = getattr(self._local, 'buffer', None)
        if buffer is None:
            buffer = self._local.buffer = bytearray(_READ_SIZE)
        head = _CHUNK.pack(index, len(segments))
        table = b''.join(_SEG.pack(off, length) for off, length in segments)
        sock = stream.sock
        sock.sendall(b'C' + head + table)
        corrupt = index in self._corrupt and segments
        broken = index in self._break and segments
        self._corrupt.discard(index)
        self._break.discard(index)
        if broken:
            off, length = segments[0]
            sent = sock.send(os.pread(self.fd, max(1, length // 2), off))
            self._count(sent)
            raise _LinkBroken()
        tag = session.ChunkTag(stream.chan.chunk_mac_out(),
                               with_data=self.chunk_hash)
        if not self.chunk_hash:
            # Nothing to read in Python: the kernel sends from the page cache.
            for n, (off, length) in enumerate(segments):
                if corrupt and n == 0:
                    data = bytearray(os.pread(self.fd, length, off))
                    data[0] ^= 0xFF
                    sock.sendall(data)
                else:
                    self._sendfile(sock, off, length)
                self._count(length)
        elif loaded:
            view = self._local.direct.view
            for off, length in segments:
                self._send_loaded(sock, view[off - start:off - start + length],
                                  tag)
                self._count(length)
        else:
            view = memoryview(buffer)
            try:
                for off, length in segments:
                    self._send_hashed(sock, off, length, tag, view, corrupt)
                    corrupt = False
                    self._count(length)
            finally:
                view.release()
        sock.sendall(tag.finish(head + table))

    def _count(self, n):
        with self.cv:
            self.wire += n

    def _check_unchanged(self):
        st = os.fstat(self.fd)
        if st.st_size != self.size or st.st_mtime_ns != self.mtime:
            raise base.MoverError('%s changed while it was being sent'
                                  % self.source_path)

    def _commit(self, digest):
        # Hashing a big file on the receiver takes a while.
        _set_timeouts(self.control.sock, max(self.timeout, self.size / 100e6))
        self.control.send_msg({'op': 'commit', 'sha256': digest})
        reply = self.control.recv_msg()
        if reply is None or not reply.get('ok'):
            raise base.MoverError('%s could not complete %s: %s' % (
                self.where, self.dest_path,
                (reply or {}).get('error', 'connection closed')))
        if digest is not None and reply.get('sha256') != digest:
            raise base.MoverError('sha256 of %s on %s does not match the '
                                  'source' % (self.dest_path, self.where))

    def _abort(self, discard):
        try:
            self.control.send_msg({'op': 'abort', 'discard': discard})
            self.control.recv_msg()
        except (OSError, EOFError, ProtocolError, ValueError):
            pass


def send(source_path, host, port, dest_path, token, streams=4,
         chunk_size=DEFAULT_CHUNK_SIZE, verify_sha256=False, progress=None,
         cancel=None, *, timeout=DEFAULT_TIMEOUT, retries=3,
         keep_partial=True, chunk_hash=True, faults=None, source_root=None,
         direct_io=True):
    """Send one file to the :class:`Receiver` at ``host:port``.

    ``dest_path`` is relative to the receiver's tree.  ``progress(bytes)`` is
    called with the logical bytes done so far (from sender threads; keep it
    quick).  Setting ``cancel`` stops the transfer and raises
    :class:`~overcloud_migrate.dtn.movers.base.TransferCancelled`; the
    receiver keeps ``<dest>.part`` for a later resume unless
    ``keep_partial`` is false.  Each chunk is retried ``retries`` times and
    each stream reconnects ``retries`` times in a row before the transfer
    fails.  ``chunk_hash=False`` leaves the data out of the per-chunk tag
    (headers stay authenticated; the data has TCP checksums only and could
    be changed on the path; the sender then reads just a probe of each
    block and sends with sendfile): for CPU-starved hosts on a trusted
    network, and to measure what the tag costs.  ``faults``
    is for tests only (see :class:`Faults`).  With ``source_root`` (the
    export root holding ``source_path``) the file is opened one component
    at a time from the root, no symlink followed.  ``direct_io`` (with the
    chunk hash on): read the source with O_DIRECT where the file system
    allows, straight into the buffer that is tagged and sent (no page
    cache in between; on a disk it halves the sender's CPU).
    """
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError('chunk_size must be within %d..%d bytes'
                         % (MIN_CHUNK_SIZE, MAX_CHUNK_SIZE))
    sender = _Sender(source_path, host, port, dest_path, _as_key(token),
                     streams, chunk_size, verify_sha256, progress, cancel,
                     timeout, retries, keep_partial, faults,
                     chunk_hash=chunk_hash, source_root=source_root,
                     direct_io=direct_io)
    return sender.run()
