"""The destination side of a sync, served on the builtin mover's data port.

:func:`install` adds three operations to a
:class:`~overcloud_migrate.dtn.movers.blockpipe.Receiver`:

``sync_open`` (the control connection of one round)
    The file must exist, be a regular file reached without a symlink below
    its export root and be at least the source's size (a larger one keeps
    its tail: a volume rounded up to whole GiB); it is opened in
    place (never created, truncated, extended or renamed).  Its saved
    signature is used when it shares the source's epoch (else the round
    starts from zeros, :meth:`~overcloud_migrate.dtn.delta.Signature.of_zeros`);
    the file is checked against it and the bad blocks are answered, with
    a session id for the data connections.  Then ``want`` messages (blocks
    and the digests the source will make them hold; the answer lists those
    already right here, which are not sent) and one ``commit``: fdatasync,
    then the signature of what the file now holds is saved.  A connection
    that ends without a commit saves nothing.
``sync_data``
    A data connection of an open round: ``D`` and ``Z`` frames
    (:mod:`.delta_wire`), each checked against its tag before it is
    written, then ``{"op": "end"}``, answered once all is written.
``sync_forget``
    Drop every saved signature of a key.

One round per key and per file at a time.
"""

import errno
import logging
import os
import posixpath
import secrets
import threading

from overcloud_migrate.dtn import delta
from overcloud_migrate.dtn import paths
from overcloud_migrate.dtn.movers.blockpipe import delta_state
from overcloud_migrate.dtn.movers.blockpipe import delta_wire
from overcloud_migrate.dtn.movers.blockpipe.extents import (
    _punch_hole,
    start_writeback)
from overcloud_migrate.dtn.movers.blockpipe.wire import (
    MAX_STREAMS,
    ProtocolError,
    _TIMEOUTS,
    _describe_oserror,
    _encode_bitmap)

LOG = logging.getLogger(__name__)


class _Round:
    """One round being received (shared by its connections)."""

    def __init__(self, key, final, fd, size, block_size, epoch, round_no,
                 sig):
        self.sid = secrets.token_hex(16)
        self.key = key
        self.final = final
        self.fd = fd
        self.size = size
        self.block_size = block_size
        self.epoch = epoch
        self.round = round_no
        self.sig = sig               # what the file holds, kept up to date
        self.lock = threading.Lock()
        self.streams = 0
        self.error = None
        self.closed = False


class SyncService:
    """The receiver's sync operations, with the directory of the saved
    signatures."""

    def __init__(self, receiver, state_dir, problem=None):
        self.receiver = receiver
        self.state_dir = state_dir
        self.problem = problem
        self._lock = threading.Lock()
        self._rounds = {}            # sid -> _Round
        self._busy = set()           # keys and files with a round open

    # -- sync_open ----------------------------------------------------------

    def open(self, chan, request):
        try:
            rnd = self._open(request)
        except (delta_state.StateError, paths.PathRefused,
                delta.SignatureError) as exc:
            chan.send_msg({'error': str(exc)})
            return
        except OSError as exc:
            chan.send_msg({'error': 'cannot open the destination %s: %s (a '
                           'sync writes into an existing file of the '
                           'source\'s size)' % (
                               request.get('path'), _describe_oserror(exc))})
            return
        try:
            self._control(chan, rnd)
        finally:
            with self._lock:
                rnd.closed = True
                self._rounds.pop(rnd.sid, None)
                self._busy.discard(('key', rnd.key))
                self._busy.discard(('file', rnd.final))
            os.close(rnd.fd)

    def _open(self, request):
        if self.problem:
            raise delta_state.StateError('syncs are refused on this DTN: %s'
                                         % self.problem)
        key = delta_state.check_key(request.get('key'))
        rel = request.get('path')
        size = request.get('size')
        block_size = request.get('block_size')
        epoch = request.get('epoch')
        if not isinstance(rel, str) or not rel:
            raise paths.PathRefused('the request names no destination file')
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise paths.PathRefused('bad size %r for %s' % (size, rel))
        if (isinstance(block_size, bool) or not isinstance(block_size, int)
                or block_size < 512 or block_size > delta_wire.MAX_FRAME):
            raise delta.SignatureError('bad block size %r' % (block_size,))
        if size > self.receiver.max_file_size:
            raise paths.PathRefused('%s: %d bytes is more than this receiver '
                                    'accepts (%d)' % (
                                        rel, size,
                                        self.receiver.max_file_size))
        try:
            resolved = self.receiver._resolve_path(rel)
        except Exception as exc:
            raise paths.PathRefused('destination path %s refused: %s'
                                    % (rel, exc)) from None
        if isinstance(resolved, tuple):
            root, relative = resolved
        else:   # a path: only its last component is opened safely
            root, relative = os.path.split(os.fspath(resolved))
        final = posixpath.join(str(root), str(relative))
        with self._lock:
            if ('key', key) in self._busy or ('file', final) in self._busy:
                raise delta_state.StateError(
                    'a round of sync %s (or another sync of %s) is already '
                    'running' % (key, final))
            self._busy.update({('key', key), ('file', final)})
        try:
            fd = paths.open_beneath(root, relative, os.O_RDWR)
            try:
                have = os.fstat(fd).st_size
                if have < size:
                    raise paths.PathRefused(
                        'the destination %s is %d bytes, smaller than the %d '
                        'bytes of the source: a sync writes in place into a '
                        'file at least as large (nothing written)'
                        % (final, have, size))
                saved = delta_state.load(self.state_dir, key, 'dst', final)
                if (saved is not None and epoch and saved.epoch == epoch
                        and saved.sig.size == size
                        and saved.sig.block_size == block_size):
                    basis, round_no = saved.sig, saved.round + 1
                    shared = True
                else:
                    shared = False
                    epoch = delta_state.new_epoch()
                    basis = delta.Signature.of_zeros(size, block_size)
                    round_no = 1
                # a larger destination (a volume rounded up to whole GiB):
                # its first `size` bytes are the copy, the rest is left
                current = delta.compute_fd(fd, block_size, what=final,
                                           size=size)
            except BaseException:
                os.close(fd)
                raise
        except BaseException:
            with self._lock:
                self._busy.discard(('key', key))
                self._busy.discard(('file', final))
            raise
        rnd = _Round(key, final, fd, size, block_size, epoch, round_no,
                     current)
        rnd.bad = delta.changed(basis, current)
        rnd.shared = shared
        with self._lock:
            self._rounds[rnd.sid] = rnd
        return rnd

    def _control(self, chan, rnd):
        bad = bytearray(len(rnd.sig.digests))
        for index in rnd.bad:
            bad[index] = 1
        chan.send_msg({'ok': True, 'sid': rnd.sid, 'epoch': rnd.epoch,
                       'basis': rnd.shared, 'round': rnd.round,
                       'bad': _encode_bitmap(bad)})
        LOG.info('sync %s round %d of %s: %d blocks differ from the saved '
                 'signature', rnd.key, rnd.round, rnd.final, len(rnd.bad))
        while True:
            msg = self._recv_idle(chan)
            if msg is None:
                LOG.info('sync %s of %s ended without a commit; nothing '
                         'saved', rnd.key, rnd.final)
                return
            op = msg.get('op')
            if op == 'want':
                chan.send_msg({'have': self._have(rnd, msg)})
            elif op == 'commit':
                chan.send_msg(self._commit(rnd, msg))
                return
            else:
                chan.send_msg({'error': 'unknown operation %r' % (op,)})
                return

    def _recv_idle(self, chan):
        while True:
            try:
                return chan.recv_msg()
            except _TIMEOUTS:
                if self.receiver._stopping.is_set():
                    return None

    def _have(self, rnd, msg):
        blocks = msg.get('blocks')
        if not isinstance(blocks, list) or len(blocks) > \
                delta_wire.WANT_BATCH:
            raise ProtocolError('bad want message')
        digests = delta_wire.decode_digests(msg.get('digests', ''),
                                            len(blocks))
        count = len(rnd.sig.digests)
        have = []
        with rnd.lock:
            for index, digest in zip(blocks, digests):
                if not isinstance(index, int) or not 0 <= index < count:
                    raise ProtocolError('block %r is not in the file'
                                        % (index,))
                if rnd.sig.digests[index] == digest:
                    have.append(index)
        return have

    def _commit(self, rnd, msg):
        with rnd.lock:
            if rnd.streams:
                return {'error': '%d data connections of %s are still open'
                        % (rnd.streams, rnd.final)}
            if rnd.error:
                return {'error': rnd.error}
        try:
            os.fdatasync(rnd.fd)
            delta_state.save(self.state_dir, rnd.key, 'dst', rnd.final,
                             rnd.sig, epoch=rnd.epoch, round=rnd.round)
        except OSError as exc:
            return {'error': 'cannot commit %s: %s'
                    % (rnd.final, _describe_oserror(exc))}
        LOG.info('sync %s round %d of %s committed', rnd.key, rnd.round,
                 rnd.final)
        return {'ok': True, 'round': rnd.round}

    # -- sync_data ------------------------------------------------------------

    def data(self, chan, request):
        with self._lock:
            rnd = self._rounds.get(request.get('sid'))
            refused = rnd is None or rnd.closed
            if not refused:
                with rnd.lock:
                    refused = rnd.streams >= MAX_STREAMS
                    if not refused:
                        rnd.streams += 1
        if refused:
            chan.send_msg({'error': 'unknown or finished sync round, or %d '
                           'streams attached already' % MAX_STREAMS})
            return
        ended = False
        try:
            chan.send_msg({'ok': True})
            ended = self._frames(chan, rnd)
        finally:
            if not ended:
                with rnd.lock:
                    rnd.streams -= 1

    def _frames(self, chan, rnd):
        sock = chan.sock
        buffer = memoryview(bytearray(delta_wire.MAX_FRAME))
        written = 0
        while True:
            try:
                kind = sock.recv(1)
            except _TIMEOUTS:
                if self.receiver._stopping.is_set():
                    return False
                continue
            if not kind:
                return False
            if kind == b'J':
                msg = chan.recv_msg_body()
                if msg.get('op') != 'end':
                    raise ProtocolError('unexpected message %r' % (msg,))
                # all written: this stream no longer holds the commit
                with rnd.lock:
                    rnd.streams -= 1
                chan.send_msg({'ok': True, 'bytes': written})
                return True
            if kind not in (delta_wire.DATA, delta_wire.ZEROS):
                raise ProtocolError('expected a sync frame, got %r' % kind)
            offset, length = delta_wire.recv_frame_head(chan, kind)
            delta_wire.check_run(offset, length, rnd.size, rnd.block_size)
            if kind == delta_wire.DATA:
                view = buffer[:length]
                if not delta_wire.recv_data(chan, offset, view):
                    raise ProtocolError('a frame of %s failed its tag; '
                                        'nothing of it written' % rnd.final)
                self._write(rnd, offset, view)
                written += length
            else:
                if not delta_wire.recv_zeros_tag(chan, offset, length):
                    raise ProtocolError('a frame of %s failed its tag'
                                        % rnd.final)
                self._zero(rnd, offset, length)

    def _write(self, rnd, offset, view):
        try:
            done = 0
            while done < len(view):
                done += os.pwrite(rnd.fd, view[done:], offset + done)
            # the disk writes while more arrives: the commit's fdatasync
            # (downtime at a cut-over) finds little left
            start_writeback(rnd.fd, offset, len(view))
        except OSError as exc:
            self._failed(rnd, exc)
        # Streams write disjoint blocks: their digests need no lock (an
        # array's slice is assigned at once), and hashing outside it lets
        # the other streams go on meanwhile.
        delta.record(rnd.sig, offset, view)

    def _zero(self, rnd, offset, length):
        try:
            if not _punch_hole(rnd.fd, offset, length):
                os.pwrite(rnd.fd, bytes(length), offset)
        except OSError as exc:
            self._failed(rnd, exc)
        delta.record_zeros(rnd.sig, offset, length)

    def _failed(self, rnd, exc):
        message = 'cannot write %s: %s' % (rnd.final, _describe_oserror(exc))
        with rnd.lock:
            rnd.error = rnd.error or message
        raise OSError(exc.errno or errno.EIO, message)

    # -- sync_forget ------------------------------------------------------------

    def forget(self, chan, request):
        try:
            key = delta_state.check_key(request.get('key'))
            with self._lock:
                if ('key', key) in self._busy:
                    chan.send_msg({'error': 'a round of sync %s is running'
                                   % key, 'busy': True})
                    return
                removed = delta_state.forget(self.state_dir, key, 'dst')
        except delta_state.StateError as exc:
            chan.send_msg({'error': str(exc)})
            return
        except OSError as exc:
            chan.send_msg({'error': 'cannot forget sync %s: %s' % (
                request.get('key'), _describe_oserror(exc))})
            return
        chan.send_msg({'ok': True, 'removed': removed})


def install(receiver, state_dir, problem=None):
    """Serve syncs on ``receiver``, their signatures kept in ``state_dir``
    (``problem``: why syncs are refused here, if they are)."""
    service = SyncService(receiver, state_dir, problem)
    receiver.handlers.update({'sync_open': service.open,
                              'sync_data': service.data,
                              'sync_forget': service.forget})
    return service

