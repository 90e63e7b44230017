"""The builtin DTN-to-DTN data path: parallel TCP streams over chunk ranges.

A :class:`Receiver` runs inside the destination DTN service; :func:`send`
runs on the source DTN.  Plain sockets and files, no OpenStack imports.

Design, in the order a byte meets it:

* The file is cut into chunks (8 MiB by default).  ``streams`` TCP
  connections take chunks from one shared queue, so a slow stream never holds
  up the others.
* Holes are found with ``SEEK_DATA``/``SEEK_HOLE`` (once for the whole file)
  and never read; the data extents are read once through a small buffer to
  find all-zero blocks (128 KiB), which are not sent either, and to hash the
  rest.  What remains goes out with ``sendfile`` (no copy into Python).
* Every chunk carries an xxh3_128 of its data, header and segment table.
  The receiver buffers the chunk, checks the hash and only then writes it,
  so a bad chunk never touches the disk (or, with ``use_splice``, splices it
  to the file, checks it there and punches it out again if bad); it answers
  with a negative acknowledgement and the sender sends that chunk again.
* The destination is ``<name>.part`` (ftruncated to the full size, so it
  stays sparse: only data is written) plus ``<name>.part.state``, a small
  journal of the chunks known good.  A broken connection, or a new
  :func:`send` after the sender gave up, carries on from that journal: only
  missing chunks are sent again.
* On commit the receiver fsyncs, optionally compares a whole-file sha256
  with the sender's, and renames ``.part`` to the final name: a file under
  its final name is always complete.
* Each connection is authenticated before anything else: the receiver sends
  a random nonce, the sender answers with an HMAC-SHA256 keyed with the
  shared token (compared in constant time), and the receiver proves the same
  back.

Wire format (after the handshake): ``b'J' + u32 length + JSON`` for control
messages and acknowledgements; ``b'C' + u64 index + u32 nseg`` then ``nseg``
times ``u64 offset + u64 length``, the segment bytes in that order and a
16-byte xxh3_128 digest (of the segment bytes, then the index/nseg header
and the segment table) for a chunk.
"""

import base64
import bisect
import collections
import ctypes
import ctypes.util
import dataclasses
import errno
import fcntl
import hashlib
import hmac
import json
import logging
import os
import pathlib
import secrets
import selectors
import socket
import stat
import struct
import threading
import time
import typing
import zlib

import xxhash

from overcloud_migrate.dtn.movers import base

LOG = logging.getLogger(__name__)

DEFAULT_PORT = 22642
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
MIN_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 64 * 1024 * 1024
ZERO_BLOCK = 128 * 1024
DEFAULT_TIMEOUT = 60.0
#: chunks sent on one connection before an acknowledgement is awaited
WINDOW = 2
#: most connections one transfer may attach on the receiver
MAX_STREAMS = 64
#: most connections (authenticated or not) a receiver serves at once
MAX_CONNECTIONS = 256
STATE_FLUSH_SECONDS = 2.0

MAGIC = b'OCMBP1\n'
NONCE_LEN = 32
MAC_LEN = 32
DIGEST_LEN = 16
_MSG = struct.Struct('!I')
_CHUNK = struct.Struct('!QI')
_SEG = struct.Struct('!QQ')
_ZEROS = bytes(ZERO_BLOCK)
_ZERO_PROBE = bytes(64)
_MAX_MSG = 16 * 1024 * 1024
_F_SETPIPE_SZ = 1031
_F_GETPIPE_SZ = 1032
_PIPE_SIZE = 1024 * 1024
_SCRATCH_SIZE = 256 * 1024
#: the sender reads (to scan and hash) through a buffer this big
_READ_SIZE = 256 * 1024


class ProtocolError(base.MoverError):
    """The peer broke the wire protocol."""


class _LinkBroken(Exception):
    """One data connection went down; the sender reconnects."""


@dataclasses.dataclass
class Faults:
    """Faults the sender injects, for tests only.

    ``corrupt_chunks``: chunk indices whose first data byte is flipped on the
    wire (once each).  ``break_chunks``: chunk indices at which the stream
    sends half the chunk, then closes its side of the connection (once each).
    ``stop_after_acks``: after this many good acknowledgements the sender
    drops every connection and gives up, as if the link went away.
    """
    corrupt_chunks: typing.AbstractSet[int] = frozenset()
    break_chunks: typing.AbstractSet[int] = frozenset()
    stop_after_acks: typing.Optional[int] = None


# -- small wire helpers -------------------------------------------------------

def _as_key(token):
    if isinstance(token, str):
        token = token.encode('utf-8')
    if not token:
        raise ValueError('the builtin mover needs a non-empty shared token')
    return bytes(token)


def _mac(key, label, server_nonce, client_nonce):
    return hmac.new(key, label + server_nonce + client_nonce,
                    hashlib.sha256).digest()


def _recv_into(sock, view):
    """Fill ``view`` from ``sock``; EOFError if the peer closes first.

    MSG_WAITALL lets the kernel fill big buffers in one call (fewer wake-ups
    and GIL hand-overs); it may still return short (timeout, signal).
    """
    got = 0
    total = len(view)
    while got < total:
        n = sock.recv_into(view[got:], total - got, socket.MSG_WAITALL)
        if not n:
            raise EOFError('connection closed in the middle of a message')
        got += n


def _recv_exact(sock, n):
    buf = bytearray(n)
    _recv_into(sock, memoryview(buf))
    return bytes(buf)


def _send_msg(sock, obj):
    data = json.dumps(obj, separators=(',', ':')).encode('utf-8')
    sock.sendall(b'J' + _MSG.pack(len(data)) + data)


def _recv_msg_body(sock):
    (length,) = _MSG.unpack(_recv_exact(sock, _MSG.size))
    if length > _MAX_MSG:
        raise ProtocolError('control message too large (%d bytes)' % length)
    return json.loads(_recv_exact(sock, length).decode('utf-8'))


def _recv_msg(sock):
    """Next JSON message, or None on a clean EOF."""
    kind = sock.recv(1)
    if not kind:
        return None
    if kind != b'J':
        raise ProtocolError('expected a control message, got %r' % kind)
    return _recv_msg_body(sock)


def _encode_bitmap(bits):
    return base64.b64encode(zlib.compress(bytes(bits))).decode('ascii')


def _decode_bitmap(text, n):
    bits = bytearray(zlib.decompress(base64.b64decode(text)))
    if len(bits) != n:
        raise ProtocolError('chunk map has %d entries, expected %d'
                            % (len(bits), n))
    return bits


def _chunk_count(size, chunk_size):
    return (size + chunk_size - 1) // chunk_size


#: what a socket raises when its kernel timeout (SO_RCVTIMEO/SO_SNDTIMEO) expires
_TIMEOUTS = (socket.timeout, BlockingIOError)


def _set_timeouts(sock, seconds):
    """Blocking socket with kernel-side timeouts: no poll() before each call."""
    sock.settimeout(None)
    whole = int(seconds)
    timeval = struct.pack('@ll', whole, int((seconds - whole) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


def _keepalive(sock, idle=60, interval=10, count=6):
    """Notice a peer that vanished without closing (about 2 minutes)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (('TCP_KEEPIDLE', idle), ('TCP_KEEPINTVL', interval),
                        ('TCP_KEEPCNT', count)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def _quiet_close(sock):
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _describe_oserror(exc):
    name = errno.errorcode.get(exc.errno, '') if exc.errno else ''
    return '%s (%s)' % (exc.strerror or exc, name) if name else str(exc)


# -- hole punching (so a resumed .part stays sparse and clean) ----------------

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_libc = None


def _punch_hole(fd, offset, length):
    """Deallocate a range (reads back as zeros); False if not supported."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6',
                            use_errno=True)
        _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int,
                                    ctypes.c_int64, ctypes.c_int64]
    mode = _FALLOC_FL_KEEP_SIZE | _FALLOC_FL_PUNCH_HOLE
    return _libc.fallocate(fd, mode, offset, length) == 0


# -- the receiver -------------------------------------------------------------

class _Incoming:
    """One destination file being written (shared by its connections)."""

    def __init__(self, final, size, chunk_size, identity):
        self.final = final
        self.part = final.with_name(final.name + '.part')
        self.state = final.with_name(final.name + '.part.state')
        self.size = size
        self.chunk_size = chunk_size
        self.identity = identity
        self.nchunks = _chunk_count(size, chunk_size)
        self.tid = secrets.token_hex(16)
        self.lock = threading.Lock()
        self.refs = 0
        self.fd = None
        self.good = bytearray(self.nchunks)
        self.finished = False     # committed, failed or discarded
        self.error = None         # why it failed, told to every stream
        self.closing = False      # last connection gone, state being saved
        self.last_flush = time.monotonic()
        self.dirty = False

    def open(self):
        self.final.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        self.fd = os.open(self.part, flags, 0o644)
        st = os.fstat(self.fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, 'not a regular file', str(self.part))
        if not self._load_state(st.st_size):
            self.good = bytearray(self.nchunks)
            os.ftruncate(self.fd, 0)
            os.ftruncate(self.fd, self.size)
            self.flush_state(force=True)

    def _load_state(self, part_size):
        try:
            with open(self.state, 'rb') as fh:
                state = json.loads(fh.read(1 << 24))
            good = _decode_bitmap(state['good'], self.nchunks)
        except (OSError, ValueError, KeyError, TypeError, zlib.error,
                ProtocolError):
            return False
        if (state.get('identity') != self.identity
                or state.get('size') != self.size
                or state.get('chunk_size') != self.chunk_size
                or part_size != self.size):
            return False
        # Chunks not known good may hold a half write: clear them.
        for index in range(self.nchunks):
            if not good[index]:
                start = index * self.chunk_size
                length = min(self.chunk_size, self.size - start)
                if not _punch_hole(self.fd, start, length):
                    return False
        self.good = good
        LOG.info('resuming %s: %d of %d chunks already here',
                 self.final, sum(good), self.nchunks)
        return True

    def flush_state(self, force=False):
        """Record the good chunks (after making their data durable)."""
        if self.fd is None or self.finished:
            return
        now = time.monotonic()
        if not force and (not self.dirty
                          or now - self.last_flush < STATE_FLUSH_SECONDS):
            return
        os.fdatasync(self.fd)
        with self.lock:
            good = bytes(self.good)
            self.dirty = False
        body = json.dumps({'v': 1, 'identity': self.identity,
                           'size': self.size, 'chunk_size': self.chunk_size,
                           'good': _encode_bitmap(good)}).encode('utf-8')
        tmp = self.state.with_name(self.state.name + '.tmp')
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        fd = os.open(tmp, flags, 0o600)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, self.state)
        self.last_flush = now

    def mark_good(self, index):
        with self.lock:
            self.good[index] = 1
            self.dirty = True

    def missing(self):
        with self.lock:
            return self.nchunks - sum(self.good)

    def remove_partial(self):
        for path in (self.part, self.state,
                     self.state.with_name(self.state.name + '.tmp')):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def close_fd(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Receiver:
    """The destination side: a threaded TCP server writing into one tree.

    ``resolve_path(rel) -> pathlib.Path`` confines a sender's relative
    destination path; anything it raises refuses the transfer before a byte
    is written.  ``token`` is the secret shared with the senders.
    """

    def __init__(self, host, port, resolve_path, token, *,
                 timeout=DEFAULT_TIMEOUT, max_chunk_size=MAX_CHUNK_SIZE,
                 use_splice=False):
        self.host = host
        self._requested_port = port
        self._resolve_path = resolve_path
        self._key = _as_key(token)
        self.timeout = timeout
        self.max_chunk_size = max_chunk_size
        # Default: read each chunk into memory, check it, write it (a bad
        # chunk never touches the file).  use_splice=True: splice(2) socket
        # -> pipe -> file and check in place (one copy less, but on the
        # tmpfs test machines it cost more CPU than it saved).
        self._splice = bool(use_splice) and hasattr(os, 'splice')
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
        LOG.info('builtin mover data port listening on %s:%d',
                 self.host, self.port)
        return self

    def stop(self):
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
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
            with self._lock:
                busy = len(self._conns) >= MAX_CONNECTIONS
            if busy:
                LOG.warning('refused a connection from %s: %d connections '
                            'open already', peer[0], MAX_CONNECTIONS)
                conn.close()
                continue
            worker = threading.Thread(target=self._serve, args=(conn, peer),
                                      name='blockpipe-conn', daemon=True)
            with self._lock:
                self._conns.add(conn)
                self._workers.add(worker)
            worker.start()

    # One connection ------------------------------------------------------

    def _serve(self, conn, peer):
        try:
            _set_timeouts(conn, self.timeout)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _keepalive(conn)
            if not self._authenticate(conn, peer):
                return
            request = _recv_msg(conn)
            if request is None:
                return
            op = request.get('op')
            if op == 'open':
                self._control(conn, request)
            elif op == 'data':
                self._data(conn, request)
            elif op == 'ping':
                _send_msg(conn, {'ok': True})
            else:
                _send_msg(conn, {'error': 'unknown operation %r' % (op,)})
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

    def _authenticate(self, conn, peer):
        server_nonce = secrets.token_bytes(NONCE_LEN)
        conn.sendall(MAGIC + server_nonce)
        client_nonce = _recv_exact(conn, NONCE_LEN)
        client_mac = _recv_exact(conn, MAC_LEN)
        expected = _mac(self._key, b'client', server_nonce, client_nonce)
        if not hmac.compare_digest(expected, client_mac):
            LOG.warning('refused a data connection from %s: bad token',
                        peer[0])
            conn.sendall(b'N')
            return False
        conn.sendall(b'Y' + _mac(self._key, b'server', server_nonce,
                                 client_nonce))
        return True

    def _control(self, conn, request):
        try:
            incoming = self._open_incoming(request)
        except base.MoverError as exc:
            _send_msg(conn, {'error': str(exc)})
            return
        try:
            _send_msg(conn, {'ok': True, 'tid': incoming.tid,
                             'good': _encode_bitmap(incoming.good)})
            while True:
                msg = self._recv_idle(conn)
                if msg is None:
                    return
                op = msg.get('op')
                if op == 'commit':
                    reply = self._commit(incoming, msg.get('sha256'))
                    _send_msg(conn, reply)
                    if reply.get('ok'):
                        return
                elif op == 'abort':
                    if msg.get('discard'):
                        self._discard(incoming)
                    _send_msg(conn, {'ok': True})
                    return
                elif op == 'good':
                    with incoming.lock:
                        _send_msg(conn, {'good': _encode_bitmap(incoming.good)})
                else:
                    _send_msg(conn, {'error': 'unknown operation %r' % (op,)})
        finally:
            self._release(incoming)

    def _recv_idle(self, conn):
        """Next control message; a silent sender is fine while it sends data."""
        while True:
            try:
                return _recv_msg(conn)
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
        try:
            final = pathlib.Path(self._resolve_path(rel))
        except Exception as exc:
            LOG.warning('refused destination path %r: %s', rel, exc)
            raise base.MoverError('destination path %s refused: %s'
                                  % (rel, exc)) from None
        if not final.name or final.is_dir():
            raise base.MoverError('destination %s is a directory' % rel)
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
            incoming = _Incoming(final, size, chunk_size, identity)
            try:
                incoming.open()
            except OSError as exc:
                incoming.close_fd()
                raise base.MoverError('cannot create %s: %s' % (
                    incoming.part, _describe_oserror(exc))) from None
            incoming.refs = 1
            self._transfers[incoming.tid] = incoming
            self._by_path[final] = incoming
            return incoming

    def _attach(self, tid):
        with self._lock:
            incoming = self._transfers.get(tid)
            if incoming is None or incoming.finished or incoming.closing:
                return None
            if incoming.refs > MAX_STREAMS:
                return None
            incoming.refs += 1
            return incoming

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
            os.fsync(incoming.fd)
            digest = None
            if want_sha256:
                digest = _sha256_fd(incoming.fd, incoming.size)
                if digest != want_sha256:
                    self._fail(incoming, 'sha256 mismatch on %s' % incoming.final)
                    return {'error': 'sha256 of %s does not match the source '
                            '(got %s, expected %s); partial file removed'
                            % (incoming.final, digest, want_sha256)}
            os.replace(incoming.part, incoming.final)
            with incoming.lock:
                incoming.finished = True
            try:
                os.unlink(incoming.state)
            except FileNotFoundError:
                pass
            dir_fd = os.open(incoming.final.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            return {'error': 'cannot complete %s: %s'
                    % (incoming.final, _describe_oserror(exc))}
        LOG.info('received %s (%d bytes)', incoming.final, incoming.size)
        return {'ok': True, 'sha256': digest}

    def _data(self, conn, request):
        incoming = self._attach(request.get('tid'))
        if incoming is None:
            _send_msg(conn, {'error': 'unknown or finished transfer'})
            return
        link = _Link(self._splice, incoming.chunk_size,
                     chunk_hash=request.get('chunk_hash', True) is not False)
        try:
            with incoming.lock:
                _send_msg(conn, {'ok': True,
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
                if not self._receive_chunk(conn, incoming, head, link):
                    return
        finally:
            link.close()
            self._release(incoming)

    def _receive_chunk(self, conn, incoming, head, link):
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
                _send_msg(conn, {'ack': index, 'ok': False, 'fatal': True,
                                 'error': incoming.error or 'transfer of %s '
                                 'was abandoned' % incoming.final})
                return False
        # The digest covers the data, then the header and segment table.
        hasher = xxhash.xxh3_128() if link.chunk_hash else _NoHash()
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
        except _WriteError as exc:
            self._fail(incoming, 'cannot write %s: %s; partial file removed'
                       % (incoming.part, _describe_oserror(exc.cause)))
            _send_msg(conn, {'ack': index, 'ok': False, 'fatal': True,
                             'error': incoming.error})
            return False
        if not ok:
            LOG.warning('chunk %d of %s arrived damaged; asking again',
                        index, incoming.final)
            with incoming.lock:
                incoming.good[index] = 0
            _send_msg(conn, {'ack': index, 'ok': False,
                             'error': 'checksum mismatch'})
            return True
        incoming.mark_good(index)
        _send_msg(conn, {'ack': index, 'ok': True})
        try:
            incoming.flush_state()
        except OSError as exc:
            LOG.warning('cannot record progress of %s: %s', incoming.part,
                        _describe_oserror(exc))
        return True

    def _recv_chunk(self, conn, incoming, segments, hasher, tail, link):
        """Read the chunk into memory, check it, then write it."""
        view = link.buffer()
        parts = []
        pos = 0
        for offset, length in segments:
            part = view[pos:pos + length]
            _recv_into(conn, part)
            hasher.update(part)
            parts.append((offset, part))
            pos += length
        digest = _recv_exact(conn, DIGEST_LEN)
        hasher.update(tail)
        if not hmac.compare_digest(digest, hasher.digest()):
            return False
        try:
            for offset, part in parts:
                done = 0
                while done < len(part):
                    done += os.pwrite(incoming.fd, part[done:], offset + done)
        except OSError as exc:
            raise _WriteError(exc) from None
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
                        raise _WriteError(exc) from None
                    n -= m
                    pos += m
                    left -= m
        digest = _recv_exact(conn, DIGEST_LEN)
        for offset, length in segments if link.chunk_hash else ():
            _hash_file_range(hasher, incoming.fd, offset, length,
                             link.scratch())
        hasher.update(tail)
        if hmac.compare_digest(digest, hasher.digest()):
            return True
        for offset, length in segments:
            if not _punch_hole(incoming.fd, offset, length):
                try:
                    os.pwrite(incoming.fd, bytes(length), offset)
                except OSError as exc:
                    raise _WriteError(exc) from None
        return False


class _NoHash:
    """Stands in for the chunk hash when the sender turned it off."""

    def update(self, data):
        pass

    def digest(self):
        return bytes(DIGEST_LEN)


class _WriteError(Exception):
    def __init__(self, cause):
        super().__init__(str(cause))
        self.cause = cause


class _Link:
    """Per-connection receive resources: a pipe for splice, or a buffer."""

    def __init__(self, use_splice, chunk_size, chunk_hash=True):
        self.chunk_size = chunk_size
        self.chunk_hash = chunk_hash
        self.pipe = None
        self.pipe_size = 0
        self._buffer = None
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
        if self._buffer is None:
            self._buffer = memoryview(bytearray(self.chunk_size))
        return self._buffer

    def close(self):
        if self.pipe is not None:
            for fd in self.pipe:
                os.close(fd)
            self.pipe = None


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


# -- the sender ---------------------------------------------------------------

def _connect(host, port, key, timeout):
    """An authenticated connection to a :class:`Receiver`."""
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
        banner = _recv_exact(sock, len(MAGIC) + NONCE_LEN)
        if banner[:len(MAGIC)] != MAGIC:
            raise base.MoverUnavailable(
                '%s is not a builtin mover data port' % where)
        server_nonce = banner[len(MAGIC):]
        client_nonce = secrets.token_bytes(NONCE_LEN)
        sock.sendall(client_nonce + _mac(key, b'client', server_nonce,
                                         client_nonce))
        verdict = _recv_exact(sock, 1)
        if verdict != b'Y':
            raise base.MoverError('the data port %s refused our token' % where)
        proof = _recv_exact(sock, MAC_LEN)
        if not hmac.compare_digest(
                proof, _mac(key, b'server', server_nonce, client_nonce)):
            raise base.MoverError('the data port %s does not know our token'
                                  % where)
        return sock
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
                banner = _recv_exact(sock, len(MAGIC) + NONCE_LEN)
        except (OSError, EOFError) as exc:
            raise base.MoverUnavailable('cannot reach the data port %s:%s: %s'
                                        % (host, port, exc)) from None
        if banner[:len(MAGIC)] != MAGIC:
            raise base.MoverUnavailable('%s:%s is not a builtin mover data '
                                        'port' % (host, port))
        return
    sock = _connect(host, port, _as_key(token), timeout)
    try:
        _send_msg(sock, {'op': 'ping'})
        reply = _recv_msg(sock)
    except (OSError, EOFError) as exc:
        raise base.MoverUnavailable('data port %s:%s: %s'
                                    % (host, port, exc)) from None
    finally:
        sock.close()
    if not reply or not reply.get('ok'):
        raise base.MoverUnavailable('data port %s:%s answered %r'
                                    % (host, port, reply))


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
                if segments and sum(segments[-1]) == pos:
                    segments[-1] = (segments[-1][0],
                                    block_end - segments[-1][0])
                else:
                    segments.append((pos, block_end - pos))
            pos = block_end
    return segments


def data_extents(fd, size):
    """The data extents [(start, end)] of a whole file, holes left out."""
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


class _Stream:
    """One data connection and its acknowledgement reader."""

    def __init__(self, sock):
        self.sock = sock
        self.pending = {}
        self.window = threading.Semaphore(WINDOW)
        self.broken = threading.Event()
        self.error = None
        self.reader = None


class _Sender:

    def __init__(self, source_path, host, port, dest_path, key, streams,
                 chunk_size, verify_sha256, progress, cancel, timeout,
                 retries, keep_partial, faults, chunk_hash=True):
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
        self.faults = faults or Faults()
        self.chunk_hash = chunk_hash
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
        try:
            fd = os.open(self.source_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise base.MoverError('cannot open %s: %s' % (
                self.source_path, _describe_oserror(exc))) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise base.MoverError('%s is not a regular file'
                                      % self.source_path)
            self.size = st.st_size
            self.mtime = st.st_mtime_ns
            self.fd = fd
            self.extents = data_extents(fd, self.size)
            return self._run()
        finally:
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
            _send_msg(control, {'op': 'open', 'path': self.dest_path,
                                'size': self.size,
                                'chunk_size': self.chunk_size,
                                'identity': self._identity()})
            reply = _recv_msg(control)
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
                hasher = _BackgroundSha256(self.source_path, self.size)
            try:
                self._move()
                if self.cancel.is_set():
                    self._abort()
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
            _quiet_close(control)

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
        sock = _connect(self.host, self.port, self.key, self.timeout)
        try:
            _send_msg(sock, {'op': 'data', 'tid': self.tid,
                             'chunk_hash': self.chunk_hash})
            reply = _recv_msg(sock)
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
        stream = _Stream(sock)
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
                    msg = _recv_msg(stream.sock)
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
            while not stream.window.acquire(timeout=0.1):
                if stream.broken.is_set() or self.stopped:
                    break
            with self.cv:
                if stream.broken.is_set() or self.stopped:
                    self._requeue(index)
                    self.cv.notify_all()
                    raise _LinkBroken()
                stream.pending[index] = True
            self._send_chunk(stream, index)

    def _send_chunk(self, stream, index):
        start = index * self.chunk_size
        end = start + self._chunk_len(index)
        buffer = getattr(self._local, 'buffer', None)
        if buffer is None:
            buffer = self._local.buffer = bytearray(_READ_SIZE)
        if self.chunk_hash:
            hasher = xxhash.xxh3_128()
            segments = data_segments(self.fd, start, end, hasher=hasher,
                                     buffer=buffer, extents=self.extents)
        else:
            hasher = _NoHash()
            segments = data_segments(self.fd, start, end, buffer=buffer,
                                     probe=True, extents=self.extents)
        head = _CHUNK.pack(index, len(segments))
        table = b''.join(_SEG.pack(off, length) for off, length in segments)
        hasher.update(head)
        hasher.update(table)
        digest = hasher.digest()
        sock = stream.sock
        sock.sendall(b'C' + head + table)
        corrupt = index in self._corrupt and segments
        broken = index in self._break and segments
        self._corrupt.discard(index)
        self._break.discard(index)
        for n, (off, length) in enumerate(segments):
            if broken:
                sent = sock.send(os.pread(self.fd, max(1, length // 2), off))
                self._count(sent)
                raise _LinkBroken()
            if corrupt and n == 0:
                data = bytearray(os.pread(self.fd, length, off))
                data[0] ^= 0xFF
                sock.sendall(data)
                sent = length
            else:
                sent = self._sendfile(sock, off, length)
            self._count(sent)
        sock.sendall(digest)

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

    def _count(self, n):
        with self.cv:
            self.wire += n

    def _check_unchanged(self):
        st = os.stat(self.source_path)
        if st.st_size != self.size or st.st_mtime_ns != self.mtime:
            raise base.MoverError('%s changed while it was being sent'
                                  % self.source_path)

    def _commit(self, digest):
        # Hashing a big file on the receiver takes a while.
        _set_timeouts(self.control, max(self.timeout, self.size / 100e6))
        _send_msg(self.control, {'op': 'commit', 'sha256': digest})
        reply = _recv_msg(self.control)
        if reply is None or not reply.get('ok'):
            raise base.MoverError('%s could not complete %s: %s' % (
                self.where, self.dest_path,
                (reply or {}).get('error', 'connection closed')))
        if digest is not None and reply.get('sha256') != digest:
            raise base.MoverError('sha256 of %s on %s does not match the '
                                  'source' % (self.dest_path, self.where))

    def _abort(self):
        try:
            _send_msg(self.control, {'op': 'abort',
                                     'discard': not self.keep_partial})
            _recv_msg(self.control)
        except (OSError, EOFError, ProtocolError, ValueError):
            pass


class _BackgroundSha256:
    """The source's sha256, computed while the chunks travel."""

    def __init__(self, path, size):
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
            with open(self._path, 'rb', buffering=0) as fh:
                buf = bytearray(4 * 1024 * 1024)
                view = memoryview(buf)
                while not self._stop.is_set():
                    n = fh.readinto(buf)
                    if not n:
                        break
                    digest.update(view[:n])
            self._digest = digest.hexdigest()
        except OSError as exc:
            self._error = exc

    def stop(self):
        self._stop.set()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise base.MoverError('cannot hash %s: %s' % (
                self._path, _describe_oserror(self._error)))
        return self._digest


def send(source_path, host, port, dest_path, token, streams=4,
         chunk_size=DEFAULT_CHUNK_SIZE, verify_sha256=False, progress=None,
         cancel=None, *, timeout=DEFAULT_TIMEOUT, retries=3,
         keep_partial=True, chunk_hash=True, faults=None):
    """Send one file to the :class:`Receiver` at ``host:port``.

    ``dest_path`` is relative to the receiver's tree.  ``progress(bytes)`` is
    called with the logical bytes done so far (from sender threads; keep it
    quick).  Setting ``cancel`` stops the transfer and raises
    :class:`~overcloud_migrate.dtn.movers.base.TransferCancelled`; the
    receiver keeps ``<dest>.part`` for a later resume unless
    ``keep_partial`` is false.  Each chunk is retried ``retries`` times and
    each stream reconnects ``retries`` times in a row before the transfer
    fails.  ``chunk_hash=False`` drops the per-chunk xxh3 (TCP checksums
    only; the sender then reads just a probe of each block to find zeros):
    for CPU-starved hosts, and to measure what the hash costs.  ``faults``
    is for tests only (see :class:`Faults`).
    """
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError('chunk_size must be within %d..%d bytes'
                         % (MIN_CHUNK_SIZE, MAX_CHUNK_SIZE))
    sender = _Sender(source_path, host, port, dest_path, _as_key(token),
                     streams, chunk_size, verify_sha256, progress, cancel,
                     timeout, retries, keep_partial, faults,
                     chunk_hash=chunk_hash)
    return sender.run()
