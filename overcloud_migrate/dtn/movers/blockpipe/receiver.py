"""The destination side of the builtin mover: :class:`Receiver`, which the
destination DTN service runs on its data port."""

import collections
import errno
import logging
import os
import posixpath
import selectors
import socket
import threading
import time


from overcloud_migrate.dtn import paths
from overcloud_migrate.dtn.movers import base
from overcloud_migrate.dtn.movers.blockpipe import inbound
from overcloud_migrate.dtn.movers.blockpipe import partfile
from overcloud_migrate.dtn.movers.blockpipe import session
from overcloud_migrate.dtn.movers.blockpipe.wire import (
    DEFAULT_TIMEOUT,
    MAX_CHUNK_SIZE,
    MAX_CONNECTIONS,
    MAX_STREAMS,
    MIN_CHUNK_SIZE,
    ProtocolError,
    STATE_FLUSH_SECONDS,
    _CHUNK,
    _SEG,
    _TIMEOUTS,
    _as_key,
    _chunk_count,
    _describe_oserror,
    _encode_bitmap,
    _keepalive,
    _quiet_close,
    _recv_exact,
    _recv_into,
    _set_timeouts)
from overcloud_migrate.dtn.movers.blockpipe.extents import (
    _sha256_fd)


LOG = logging.getLogger(__name__)

#: seconds a new connection has for the handshake and its first request
HANDSHAKE_TIMEOUT = 10.0
#: handshakes one peer address may have running at once
MAX_PENDING_PER_PEER = 8
#: largest file a sender may announce (bytes; also capped by free space)
MAX_FILE_SIZE = 16 * 1024 ** 4
#: most chunks per file (the chunk map costs a byte each, in RAM)
MAX_CHUNKS = 1 << 22


def _free_space(dir_fd):
    st = os.fstatvfs(dir_fd)
    return st.f_bavail * st.f_frsize


# -- the receiver -------------------------------------------------------------


class Receiver(inbound.ChunkWriting):
    """The destination side: a threaded TCP server writing into one tree.

    ``resolve_path(rel) -> (root, relative)`` confines a sender's relative
    destination path; anything it raises refuses the transfer before a byte
    is written.  The file is opened from ``root`` one component at a time,
    no symlink followed (a plain path is still accepted: then only its last
    component is protected).  ``token`` is the secret shared with the senders.
    """

    def __init__(self, host, port, resolve_path, token, *,
                 timeout=DEFAULT_TIMEOUT, max_chunk_size=MAX_CHUNK_SIZE,
                 use_splice=False, handshake_timeout=HANDSHAKE_TIMEOUT,
                 max_pending_per_peer=MAX_PENDING_PER_PEER,
                 max_file_size=MAX_FILE_SIZE, free_space=None,
                 peer_allowed=None, direct_io=True):
        self.host = host
        self._requested_port = port
        self._resolve_path = resolve_path
        self._key = _as_key(token)
        self.timeout = timeout
        self.max_chunk_size = max_chunk_size
        self.handshake_timeout = handshake_timeout
        self.max_pending_per_peer = max_pending_per_peer
        self.max_file_size = max_file_size
        self._free_space = free_space or _free_space
        # peer_allowed(address) -> bool: the network allow-list, if any
        self._peer_allowed = peer_allowed
        self._pending = collections.Counter()   # peer -> handshakes running
        # Default: read each chunk into memory, check it, write it (a bad
        # chunk never touches the file).  use_splice=True: splice(2) socket
        # -> pipe -> file and check in place (one copy less, but on the
        # tmpfs test machines it cost more CPU than it saved).
        self._splice = bool(use_splice) and hasattr(os, 'splice')
        # direct_io: chunks checked in memory go to the disk with O_DIRECT
        # where the file system takes it (see partfile); False: buffered.
        self.direct_io = bool(direct_io)
        self._listener = None
        self._selector = None
        self._thread = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._closed = threading.Condition(self._lock)
        self._transfers = {}          # tid -> _Incoming
        self._by_path = {}            # final path -> _Incoming
        self._conns = set()
        self._workers = set()
        #: more operations by name: handler(chan, request) (syncs)
        self.handlers = {}

    @property
    def port(self):
        if self._listener is None:
            return self._requested_port
        return self._listener.getsockname()[1]

    def start(self):
        infos = socket.getaddrinfo(self.host, self._requested_port,
                                   type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        family, socktype, proto, _, addr = infos[0]
        listener = socket.socket(family, socktype, proto)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(addr)
            listener.listen(64)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._accept_loop,
                                         name='blockpipe-accept', daemon=True)
        self._thread.start()
        self._flusher = threading.Thread(target=self._flush_loop,
                                         name='blockpipe-journal', daemon=True)
        self._flusher.start()
        LOG.info('builtin mover data port listening on %s:%d',
                 self.host, self.port)
        return self

    def _flush_loop(self):
        """Save the journals every STATE_FLUSH_SECONDS, off the data path."""
        while not self._stopping.wait(STATE_FLUSH_SECONDS / 4):
            with self._lock:
                transfers = [incoming for incoming in self._transfers.values()
                             if not incoming.closing]
            for incoming in transfers:
                try:
                    incoming.flush_state()
                except (OSError, TypeError) as exc:  # TypeError: fd closed
                    LOG.warning('cannot record progress of %s: %s',
                                incoming.part, exc)

    def stop(self):
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            self._flusher.join()
        if self._listener is not None:
            self._selector.close()
            self._listener.close()
        with self._lock:
            conns = list(self._conns)
            workers = list(self._workers)
        for conn in conns:
            _quiet_close(conn)
        for worker in workers:
            worker.join(timeout=10)
        with self._lock:
            transfers = list(self._transfers.values())
        for incoming in transfers:
            self._close_incoming(incoming)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept_loop(self):
        while not self._stopping.is_set():
            if not self._selector.select(timeout=0.2):
                continue
            try:
                conn, peer = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                LOG.warning('accept failed: %s', exc)
                continue
            if self._peer_allowed is not None and \
                    not self._peer_allowed(peer[0]):
                LOG.warning('refused a connection from %s: outside the '
                            'allowed networks', peer[0])
                conn.close()
                continue
            with self._lock:
                busy = len(self._conns) >= MAX_CONNECTIONS
                crowded = self._pending[peer[0]] >= self.max_pending_per_peer
                if not busy and not crowded:
                    self._pending[peer[0]] += 1
            if busy or crowded:
                LOG.warning('refused a connection from %s: %s', peer[0],
                            '%d connections open already' % MAX_CONNECTIONS
                            if busy else '%d of its handshakes run already'
                            % self.max_pending_per_peer)
                conn.close()
                continue
            worker = threading.Thread(target=self._serve, args=(conn, peer),
                                      name='blockpipe-conn', daemon=True)
            with self._lock:
                self._conns.add(conn)
                self._workers.add(worker)
            worker.start()

    # One connection ------------------------------------------------------

    def _handshake(self, conn, peer):
        """The Channel of an authenticated sender, or None; the whole
        handshake and first request must come within handshake_timeout."""
        try:
            _set_timeouts(conn, self.handshake_timeout)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            chan = session.server_handshake(conn, self._key)
            if chan is None:
                LOG.warning('refused a data connection from %s: bad token',
                            peer[0])
                return None, None
            request = chan.recv_msg()
        finally:
            with self._lock:
                self._pending[peer[0]] -= 1
                if self._pending[peer[0]] <= 0:
                    del self._pending[peer[0]]
        _set_timeouts(conn, self.timeout)
        _keepalive(conn)
        return chan, request

    def _serve(self, conn, peer):
        try:
            chan, request = self._handshake(conn, peer)
            if request is None:
                return
            op = request.get('op')
            if op == 'open':
                self._control(chan, request)
            elif op == 'data':
                self._data(chan, request)
            elif op == 'ping':
                chan.send_msg({'ok': True})
            elif op in self.handlers:
                self.handlers[op](chan, request)
            else:
                chan.send_msg({'error': 'unknown operation %r' % (op,)})
        except (OSError, EOFError, ValueError, ProtocolError) as exc:
            if not self._stopping.is_set():
                LOG.info('connection from %s ended: %s', peer[0], exc)
        except Exception:
            LOG.exception('connection from %s failed', peer[0])
        finally:
            _quiet_close(conn)
            with self._lock:
                self._conns.discard(conn)
                self._workers.discard(threading.current_thread())

    def _control(self, chan, request):
        try:
            incoming = self._open_incoming(request)
        except base.MoverError as exc:
            chan.send_msg({'error': str(exc)})
            return
        try:
            chan.send_msg({'ok': True, 'tid': incoming.tid,
                           'good': _encode_bitmap(incoming.good)})
            while True:
                msg = self._recv_idle(chan)
                if msg is None:
                    return
                op = msg.get('op')
                if op == 'commit':
                    reply = self._commit(incoming, msg.get('sha256'))
                    chan.send_msg(reply)
                    if reply.get('ok'):
                        return
                elif op == 'abort':
                    if msg.get('discard'):
                        self._discard(incoming)
                    chan.send_msg({'ok': True})
                    return
                elif op == 'good':
                    with incoming.lock:
                        chan.send_msg({'good': _encode_bitmap(incoming.good)})
                else:
                    chan.send_msg({'error': 'unknown operation %r' % (op,)})
        finally:
            self._release(incoming)

    def _recv_idle(self, chan):
        """Next control message; a silent sender is fine while it sends data."""
        while True:
            try:
                return chan.recv_msg()
            except _TIMEOUTS:
                if self._stopping.is_set():
                    return None

    def _open_incoming(self, request):
        rel = request.get('path')
        size = request.get('size')
        chunk_size = request.get('chunk_size')
        identity = request.get('identity')
        if not isinstance(rel, str) or not rel:
            raise base.MoverError('the request names no destination path')
        if not isinstance(size, int) or size < 0:
            raise base.MoverError('bad size %r for %s' % (size, rel))
        if (not isinstance(chunk_size, int)
                or not MIN_CHUNK_SIZE <= chunk_size <= self.max_chunk_size):
            raise base.MoverError(
                'chunk size %r for %s is outside %d..%d bytes'
                % (chunk_size, rel, MIN_CHUNK_SIZE, self.max_chunk_size))
        if not isinstance(identity, str):
            raise base.MoverError('the request for %s has no identity' % rel)
        data_bytes = request.get('data_bytes', size)
        if not isinstance(data_bytes, int) or not 0 <= data_bytes <= size:
            raise base.MoverError('bad data size %r for %s' % (data_bytes, rel))
        if size > self.max_file_size:
            raise base.MoverError(
                '%s: %d bytes is more than this receiver accepts (%d)'
                % (rel, size, self.max_file_size))
        if _chunk_count(size, chunk_size) > MAX_CHUNKS:
            raise base.MoverError('%s: more than %d chunks of %d bytes; use '
                                  'bigger chunks' % (rel, MAX_CHUNKS,
                                                     chunk_size))
        try:
            resolved = self._resolve_path(rel)
            if isinstance(resolved, tuple):
                root, relative = resolved
            else:   # a path: only its last component is opened safely
                root, relative = os.path.split(os.fspath(resolved))
        except Exception as exc:
            LOG.warning('refused destination path %r: %s', rel, exc)
            raise base.MoverError('destination path %s refused: %s'
                                  % (rel, exc)) from None
        final = posixpath.join(str(root), str(relative))
        with self._lock:
            # A transfer whose connections just went away saves its journal
            # first: wait for it, so a resume sees every good chunk.
            deadline = time.monotonic() + self.timeout
            while (final in self._by_path and self._by_path[final].closing
                   and time.monotonic() < deadline):
                self._closed.wait(0.5)
            incoming = self._by_path.get(final)
            if incoming is not None and incoming.closing:
                raise base.MoverError('destination %s is still being closed'
                                      % rel)
            if incoming is not None and not incoming.finished:
                if (incoming.identity != identity or incoming.size != size
                        or incoming.chunk_size != chunk_size):
                    raise base.MoverError(
                        'destination %s is busy with another transfer' % rel)
                incoming.refs += 1
                return incoming
            incoming = partfile.Incoming(root, relative, size, chunk_size,
                                         identity, direct_io=self.direct_io)
            try:
                incoming.open()
                self._check_space(incoming, data_bytes)
            except paths.PathRefused as exc:
                incoming.close_fd()
                raise base.MoverError('destination %s refused: %s'
                                      % (rel, exc)) from None
            except OSError as exc:
                incoming.close_fd()
                raise base.MoverError('cannot create %s: %s' % (
                    incoming.part, _describe_oserror(exc))) from None
            incoming.refs = 1
            self._transfers[incoming.tid] = incoming
            self._by_path[final] = incoming
            return incoming

    def _check_space(self, incoming, data_bytes):
        """The sender's declared data must fit in the free space (what the
        .part already holds counts as available); writes beyond the
        declared data are refused."""
        have = incoming.allocated()
        free = self._free_space(incoming.dir_fd)
        if data_bytes - have > free:
            incoming.remove_partial()
            raise OSError(errno.ENOSPC, 'No space left on device for the %d '
                          'data bytes announced (%d free)'
                          % (data_bytes - have, free))
        incoming.quota = data_bytes

    def _attach(self, tid):
        """(the transfer, None) with one more stream on it, or (None, why
        not): a transfer that failed says why, so that a sender whose
        stream comes after the failure still learns its cause."""
        with self._lock:
            incoming = self._transfers.get(tid)
            if incoming is not None and incoming.finished and incoming.error:
                return None, 'the transfer of %s failed: %s' % (
                    incoming.final, incoming.error)
            if incoming is None or incoming.finished or incoming.closing:
                return None, 'unknown or finished transfer'
            if incoming.refs > MAX_STREAMS:
                return None, 'more than %d streams' % MAX_STREAMS
            incoming.refs += 1
            return incoming, None

    def _release(self, incoming):
        with self._lock:
            incoming.refs -= 1
            if incoming.refs > 0:
                return
            incoming.closing = True
        try:
            self._close_incoming(incoming)
        finally:
            with self._lock:
                self._transfers.pop(incoming.tid, None)
                if self._by_path.get(incoming.final) is incoming:
                    del self._by_path[incoming.final]
                self._closed.notify_all()

    def _close_incoming(self, incoming):
        try:
            incoming.flush_state(force=True)
        except OSError as exc:
            LOG.warning('cannot record progress of %s: %s', incoming.part,
                        _describe_oserror(exc))
        incoming.close_fd()

    def _discard(self, incoming):
        with incoming.lock:
            incoming.finished = True
        incoming.remove_partial()

    def _fail(self, incoming, message):
        """A write failed for good (disk full, ...): drop the partial file."""
        LOG.error('%s', message)
        with incoming.lock:
            already = incoming.finished
            incoming.finished = True
            if incoming.error is None:
                incoming.error = message
        if not already:
            incoming.remove_partial()

    def _commit(self, incoming, want_sha256):
        missing = incoming.missing()
        if missing:
            return {'error': '%s is incomplete: %d chunks missing'
                    % (incoming.final, missing)}
        with incoming.lock:
            if incoming.finished:
                return {'error': incoming.error or 'transfer of %s was '
                        'abandoned' % incoming.final}
        try:
            digest = None
            if want_sha256:
                digest = _sha256_fd(incoming.fd, incoming.size)
                if digest != want_sha256:
                    self._fail(incoming, 'sha256 mismatch on %s' % incoming.final)
                    return {'error': 'sha256 of %s does not match the source '
                            '(got %s, expected %s); partial file removed'
                            % (incoming.final, digest, want_sha256)}
            incoming.commit()
        except OSError as exc:
            return {'error': 'cannot complete %s: %s'
                    % (incoming.final, _describe_oserror(exc))}
        LOG.info('received %s (%d bytes)', incoming.final, incoming.size)
        return {'ok': True, 'sha256': digest}

    def _data(self, chan, request):
        conn = chan.sock
        incoming, refusal = self._attach(request.get('tid'))
        if incoming is None:
            chan.send_msg({'error': refusal})
            return
        link = inbound.Link(self._splice, incoming.chunk_size,
                     chunk_hash=request.get('chunk_hash', True) is not False)
        try:
            with incoming.lock:
                chan.send_msg({'ok': True,
                               'good': _encode_bitmap(incoming.good)})
            head = bytearray(_CHUNK.size)
            while True:
                try:
                    kind = conn.recv(1)
                except _TIMEOUTS:
                    if self._stopping.is_set():
                        return
                    continue      # an idle stream waits for work: fine
                if not kind:
                    return
                if kind != b'C':
                    raise ProtocolError('expected a chunk, got %r' % kind)
                _recv_into(conn, memoryview(head))
                if not self._receive_chunk(chan, incoming, head, link):
                    return
        finally:
            link.close()
            self._release(incoming)

    def _receive_chunk(self, chan, incoming, head, link):
        conn = chan.sock
        index, nseg = _CHUNK.unpack(head)
        if index >= incoming.nchunks:
            raise ProtocolError('chunk %d beyond the end of %s'
                                % (index, incoming.final))
        start = index * incoming.chunk_size
        end = min(start + incoming.chunk_size, incoming.size)
        if nseg > (end - start) // _SEG.size + 1:
            raise ProtocolError('chunk %d has %d segments' % (index, nseg))
        table = _recv_exact(conn, nseg * _SEG.size)
        segments = []
        last = start
        for i in range(nseg):
            offset, length = _SEG.unpack_from(table, i * _SEG.size)
            if offset < last or length <= 0 or offset + length > end:
                raise ProtocolError('chunk %d of %s has a bad segment table'
                                    % (index, incoming.final))
            last = offset + length
            segments.append((offset, length))
        with incoming.lock:
            if incoming.finished:
                chan.send_msg({'ack': index, 'ok': False, 'fatal': True,
                                 'error': incoming.error or 'transfer of %s '
                                 'was abandoned' % incoming.final})
                return False
        # The digest covers the data, then the header and segment table.
        hasher = session.ChunkTag(chan.chunk_mac_in(),
                                  with_data=link.chunk_hash)
        tail = bytes(head) + table
        try:
            if link.pipe is not None and segments:
                ok = self._splice_chunk(conn, incoming, segments, hasher,
                                        tail, link)
                if ok is None:                 # no splice here after all
                    ok = self._recv_chunk(conn, incoming, segments, hasher,
                                          tail, link)
            else:
                ok = self._recv_chunk(conn, incoming, segments, hasher, tail,
                                      link)
        except inbound.WriteError as exc:
            self._fail(incoming, 'cannot write %s: %s; partial file removed'
                       % (incoming.part, _describe_oserror(exc.cause)))
            chan.send_msg({'ack': index, 'ok': False, 'fatal': True,
                             'error': incoming.error})
            return False
        if not ok:
            LOG.warning('chunk %d of %s arrived damaged; asking again',
                        index, incoming.final)
            with incoming.lock:
                incoming.good[index] = 0
            chan.send_msg({'ack': index, 'ok': False,
                             'error': 'checksum mismatch'})
            return True
        incoming.mark_good(index)
        chan.send_msg({'ack': index, 'ok': True})
        return True
