"""The source side of a sync: :func:`sync` runs one round.

A round (the protocol of :mod:`overcloud_migrate.dtn.delta`):

1. ``sync_open`` names the destination file, its size, the key and the
   epoch of the source's saved signature.  While the destination checks
   its file against its own saved signature, the source hashes its file.
2. The answer says whether the destination's signature is of the same
   epoch (if not, both start from zeros: round 1) and lists its bad blocks.
3. Needed are the blocks changed since the source's saved signature and
   the bad ones.  Their digests go over in ``want`` messages; the
   destination answers those it holds already (what a round cut short
   wrote), which are not sent again.
4. The rest goes over ``streams`` data connections in frames of at most
   1 MiB: data, or a zero run without data.  Holes of the source are not
   read.  The digests of what was sent are taken from the very buffers
   sent, so a block the guest rewrote since the hash pass is caught in the
   next round.
5. ``commit``: the destination fdatasyncs and saves its signature; then
   the source saves its own.  A round cut short saves nothing, and its
   re-run converges.
"""

import bisect
import collections
import dataclasses
import errno
import os
import threading
import time

from overcloud_migrate.dtn import delta
from overcloud_migrate.dtn.movers import base
from overcloud_migrate.dtn.movers.blockpipe import delta_state
from overcloud_migrate.dtn.movers.blockpipe import delta_wire
from overcloud_migrate.dtn.movers.blockpipe.outbound import (
    _connect,
    open_source)
from overcloud_migrate.dtn.movers.blockpipe.wire import (
    DEFAULT_TIMEOUT,
    MAX_STREAMS,
    ProtocolError,
    _as_key,
    _decode_bitmap,
    _describe_oserror,
    _quiet_close,
    _set_timeouts)

#: the destination reads its whole file to check it: allow for a slow disk
_VERIFY_BYTES_PER_S = 50e6


@dataclasses.dataclass
class SyncResult:
    size: int                 # bytes of the file
    bytes: int                # data bytes that crossed the link
    changed_bytes: int        # bytes in blocks changed since the last round
    repaired_bytes: int       # bytes resent because the destination's were bad
    round: int
    seconds: float


class _Round:
    def __init__(self, source_path, host, port, dest_path, key, token,
                 state_dir, streams, progress, cancel, timeout, block_size,
                 source_root, peer):
        self.source_path = str(source_path)
        self.host = host
        self.port = port
        self.where = '%s:%s' % (host, port)
        self.dest_path = dest_path
        self.key = delta_state.check_key(key)
        self.token = _as_key(token)
        self.state_dir = state_dir
        self.streams = max(1, min(int(streams), MAX_STREAMS))
        self.progress = progress
        self.cancel = cancel if cancel is not None else threading.Event()
        self.timeout = timeout
        self.block_size = block_size
        self.source_root = source_root
        self.peer = peer or {}
        self.lock = threading.Lock()
        self.queue = collections.deque()
        self.sent = 0
        self.error = None
        self.live = set()
        self.wake = threading.Event()   # a data worker ended
        self.ended = 0                  # data workers that have ended

    def what(self):
        return 'sync %s of %s to %s:%s' % (self.key, self.source_path,
                                           self.where, self.dest_path)

    def run(self):
        fd = open_source(self.source_path, self.source_root, 'sync')
        try:
            self.fd = fd
            self.size = os.fstat(fd).st_size
            return self._run()
        except (OSError, EOFError, ProtocolError) as exc:
            if self.cancel.is_set():
                raise self._cancelled() from None
            raise base.MoverError('%s failed: %s' % (
                self.what(), _describe(exc))) from None
        finally:
            os.close(fd)

    def _check_cancel(self, done=None, total=None):
        if self.cancel.is_set():
            raise self._cancelled()

    def _cancelled(self):
        return base.TransferCancelled('%s was cancelled (nothing committed; '
                                      'the next round carries on)'
                                      % self.what())

    def _held(self):
        """The name this side's signature is saved under."""
        return '%s:%d:%s' % (self.host, self.port, self.dest_path)

    def _run(self):
        started = time.monotonic()
        # What the destination holds is what this side remembers, so it is
        # filed under the destination file: a round may read another source
        # file (warm migration reads a new snapshot each round).
        saved = delta_state.load(self.state_dir, self.key, 'src',
                                 self._held())
        control = _connect(self.host, self.port, self.token, self.timeout)
        self.control = control
        try:
            control.send_msg({
                'op': 'sync_open', 'path': self.dest_path, 'size': self.size,
                'key': self.key, 'block_size': self.block_size,
                'epoch': saved.epoch if saved else None})
            # With a signature saved here the hash pass runs while the
            # destination checks its file; without one it waits for the
            # answer (below).
            first = saved is None
            current = None if first else self._hash()
            _set_timeouts(control.sock, max(
                self.timeout, self.size / _VERIFY_BYTES_PER_S))
            reply = control.recv_msg()
            _set_timeouts(control.sock, self.timeout)
            if reply is None or not reply.get('ok'):
                raise base.MoverError('%s (%d bytes) was refused by %s: %s' % (
                    self.what(), self.size, self.where,
                    (reply or {}).get('error', 'connection closed')))
            usable = (reply.get('basis') and saved is not None
                      and saved.epoch == reply.get('epoch')
                      and saved.sig.size == self.size
                      and saved.sig.block_size == self.block_size)
            if usable:
                basis, round_no = saved.sig, saved.round + 1
            else:
                basis, round_no = delta.Signature.of_zeros(
                    self.size, self.block_size), 1
            count = delta.blocks_of(self.size, self.block_size)
            bad = _decode_bitmap(reply['bad'], count)
            self.holes = _hole_map(self.fd, self.size)
            # A first round into a destination that holds nothing (no
            # signature there, nothing but zeros: a new volume) needs no
            # hash pass: every block that may hold data goes, its digest
            # taken from the very buffer sent: one read, sending at once.
            # A destination holding data (a round cut short, a forgotten
            # sync) is hashed against, so what it holds is not sent again.
            first = first and not any(bad)
            self.new_sig = delta.Signature(self.block_size, self.size,
                                           basis.digests[:])
            if first:
                # zeros: nothing was saved here, nothing is held there;
                # every stretch that may hold data goes as it lies (the
                # digests a held block would be checked against are not
                # known: all of it is sent), no list of blocks is built
                current = basis
                changed_bytes = repaired_bytes = 0    # counted once sent
                self.queue.extend(self.holes.extents(self.block_size,
                                                     delta_wire.MAX_FRAME))
            else:
                if current is None:
                    current = self._hash()
                changed = delta.changed(basis, current)
                need = set(changed)
                need.update(_set_bits(bad))
                need = sorted(need)
                have = self._ask_have(need, current)
                send = [i for i in need if i not in have]
                changed_set = set(changed)
                changed_bytes = sum(current.block_range(i)[1]
                                    for i in changed)
                repaired_bytes = sum(current.block_range(i)[1] for i in send
                                     if i not in changed_set)
                self.queue.extend(delta.extents(send, current,
                                                delta_wire.MAX_FRAME))
            self._move(reply['sid'])
            if first:
                # what differs from zeros is what changed (the data sent)
                changed_bytes = self.sent
            if self.cancel.is_set():
                raise self._cancelled()
            if self.error is not None:
                raise self.error
            _set_timeouts(control.sock, max(self.timeout,
                                            self.size / 1e9 + 60))
            control.send_msg({'op': 'commit'})
            done = control.recv_msg()
            if done is None or not done.get('ok'):
                raise base.MoverError('%s could not be committed on %s: %s'
                                      % (self.what(), self.where,
                                         (done or {}).get(
                                             'error', 'connection closed')))
            delta_state.save(self.state_dir, self.key, 'src',
                             self._held(), self.new_sig,
                             epoch=reply['epoch'], round=round_no,
                             peer=dict(self.peer, host=self.host,
                                       port=self.port,
                                       dest_path=self.dest_path))
            return SyncResult(size=self.size, bytes=self.sent,
                              changed_bytes=changed_bytes,
                              repaired_bytes=repaired_bytes, round=round_no,
                              seconds=time.monotonic() - started)
        finally:
            _quiet_close(control.sock)

    def _hash(self):
        return delta.compute_fd(self.fd, self.block_size,
                                progress=self._check_cancel,
                                what=self.source_path)

    def _ask_have(self, need, current):
        """Blocks of ``need`` the destination holds already, as they should
        be (recorded as such in the new signature)."""
        have = set()
        for first in range(0, len(need), delta_wire.WANT_BATCH):
            if self.cancel.is_set():
                raise self._cancelled()
            blocks = need[first:first + delta_wire.WANT_BATCH]
            self.control.send_msg({
                'op': 'want', 'blocks': blocks,
                'digests': delta_wire.encode_digests(
                    current.digests[i] for i in blocks)})
            reply = self.control.recv_msg()
            if reply is None or 'have' not in reply:
                raise base.MoverError('%s: %s answered %r to the block list'
                                      % (self.what(), self.where, reply))
            for index in reply['have']:
                if isinstance(index, int) and 0 <= index < len(
                        current.digests):
                    have.add(index)
                    self.new_sig.digests[index] = current.digests[index]
        return have

    # -- the data connections ---------------------------------------------

    def _move(self, sid):
        if not self.queue:
            return
        workers = [threading.Thread(target=self._worker, args=(sid,),
                                    daemon=True, name='sync-send-%d' % i)
                   for i in range(min(self.streams, len(self.queue)))]
        for worker in workers:
            worker.start()
        # Each worker counts itself out and sets ``wake`` as it ends: the
        # round goes on the moment the last one does (a cancel is seen
        # within a tenth of a second).
        while True:
            with self.lock:
                if self.ended == len(workers):
                    break
                self.wake.clear()
            self.wake.wait(0.1)
            if self.cancel.is_set() or self.error is not None:
                with self.lock:
                    live = list(self.live)
                for chan in live:
                    _quiet_close(chan.sock)
                break
        for worker in workers:
            worker.join()

    def _worker(self, sid):
        chan = None
        try:
            chan = _connect(self.host, self.port, self.token, self.timeout)
            with self.lock:
                self.live.add(chan)
            chan.send_msg({'op': 'sync_data', 'sid': sid})
            reply = chan.recv_msg()
            if reply is None or not reply.get('ok'):
                raise base.MoverError('%s refused a data connection: %s' % (
                    self.where, (reply or {}).get('error',
                                                  'connection closed')))
            buffer = memoryview(bytearray(delta_wire.MAX_FRAME))
            while not self.cancel.is_set() and self.error is None:
                with self.lock:
                    if not self.queue:
                        break
                    offset, length = self.queue.popleft()
                self._send_extent(chan, offset, length, buffer)
            if self.cancel.is_set() or self.error is not None:
                return
            chan.send_msg({'op': 'end'})
            reply = chan.recv_msg()
            if reply is None or not reply.get('ok'):
                raise base.MoverError('%s did not confirm the data of %s: %s'
                                      % (self.where, self.dest_path,
                                         (reply or {}).get(
                                             'error', 'connection closed')))
        except Exception as exc:
            with self.lock:
                if self.error is None and not self.cancel.is_set():
                    self.error = exc if isinstance(
                        exc, base.MoverError) else base.MoverError(
                        '%s failed: %s' % (self.what(), _describe(exc)))
        finally:
            if chan is not None:
                with self.lock:
                    self.live.discard(chan)
                _quiet_close(chan.sock)
            with self.lock:
                self.ended += 1
            self.wake.set()

    def _send_extent(self, chan, offset, length, buffer):
        """Send blocks [offset, offset+length): zero runs as ``Z`` frames
        (holes not even read), the rest as ``D`` frames, and record the
        digests of what went out."""
        bs = self.block_size
        if self.holes.covers(offset, offset + length):
            delta_wire.send_zeros(chan, offset, length)
            self._record_zeros(offset, length)
            return
        view = buffer[:length]
        if os.preadv(self.fd, [view], offset) != length:
            raise OSError(errno.EIO, 'the file shrank while being read')
        for start, end, zero in _zero_runs(view.obj, length, bs):
            self._emit(chan, offset + start, view[start:end], zero)

    def _emit(self, chan, offset, data, zero):
        # The workers record disjoint blocks: no lock is needed for that
        # (an array's slice is assigned at once), and hashing outside the
        # lock lets the others go on meanwhile.
        if zero:
            delta_wire.send_zeros(chan, offset, len(data))
            self._record_zeros(offset, len(data))
            return
        delta_wire.send_data(chan, offset, data)
        delta.record(self.new_sig, offset, data)
        with self.lock:
            self.sent += len(data)
            sent = self.sent
        if self.progress is not None:
            self.progress(sent)

    def _record_zeros(self, offset, length):
        delta.record_zeros(self.new_sig, offset, length)


_ZEROS_VIEW = memoryview(bytes(delta_wire.MAX_FRAME))


def _zero_runs(raw, length, block_size):
    """(start, end, zero) of the runs of whole blocks of ``raw[:length]``
    that are all zeros (``zero`` True) or not, in order; the last block
    may be short.  The searches run in C (startswith, find): a buffer of
    zeros or of data costs one or two calls, not one per block."""
    if raw.startswith(_ZEROS_VIEW[:length], 0, length):
        return [(0, length, True)]
    whole = length - length % block_size
    block = _ZEROS_VIEW[:block_size]
    runs, pos = [], 0
    while pos < length:
        # the next block of zeros at or after pos (find gives the first
        # run of block_size zeros; the first whole block in it, or after)
        zero_at = length
        hit = raw.find(block, pos, whole)
        while hit >= 0:
            aligned = -(-hit // block_size) * block_size
            if aligned + block_size <= whole and raw.startswith(
                    block, aligned, aligned + block_size):
                zero_at = aligned
                break
            hit = raw.find(block, aligned + 1, whole)
        if zero_at == length and whole < length and raw.startswith(
                _ZEROS_VIEW[:length - whole], whole, length):
            zero_at = whole             # the short last block is zeros
        if zero_at > pos:
            runs.append((pos, zero_at, False))
        if zero_at >= length:
            break
        end = zero_at + block_size
        while end < length and raw.startswith(
                _ZEROS_VIEW[:min(block_size, length - end)], end,
                min(end + block_size, length)):
            end = min(end + block_size, length)
        runs.append((zero_at, min(end, length), True))
        pos = end
    return runs


class _hole_map:
    """The holes of a file (SEEK_DATA/SEEK_HOLE), asked whether a range
    lies wholly in one."""

    def __init__(self, fd, size):
        self.size = size
        self.ranges = delta._data_ranges(fd, size)
        self.starts = [start for start, _ in self.ranges]

    def extents(self, block_size, max_length):
        """(offset, length) of the stretches that may hold data, widened
        to whole blocks of ``block_size``, in pieces of at most
        ``max_length`` bytes (a multiple of the block size)."""
        found = []
        for start, end in self.ranges:
            start -= start % block_size
            end = min(self.size, -(-end // block_size) * block_size)
            if found and found[-1][1] >= start:
                found[-1][1] = max(found[-1][1], end)
            else:
                found.append([start, end])
        step = max(1, max_length // block_size) * block_size
        return [(offset, min(step, end - offset))
                for start, end in found
                for offset in range(start, end, step)]

    def covers(self, start, end):
        """True when [start, end) holds no data."""
        i = bisect.bisect_right(self.starts, start) - 1
        if i >= 0 and self.ranges[i][1] > start:
            return False
        nxt = i + 1
        return nxt >= len(self.ranges) or self.ranges[nxt][0] >= end


_ONE_IF_SET = bytes([0] + [1] * 255)


def _set_bits(bitmap):
    """Indices of the non-zero bytes of ``bitmap`` (one byte per block)."""
    bitmap = bytes(bitmap).translate(_ONE_IF_SET)
    found, index = [], bitmap.find(1)
    while index >= 0:
        found.append(index)
        index = bitmap.find(1, index + 1)
    return found


def _describe(exc):
    if isinstance(exc, OSError):
        return _describe_oserror(exc)
    return str(exc) or type(exc).__name__


def sync(source_path, host, port, dest_path, token, key, state_dir,
         streams=4, progress=None, cancel=None, *, timeout=DEFAULT_TIMEOUT,
         block_size=delta.DEFAULT_BLOCK_SIZE, source_root=None, peer=None):
    """Run one round of the sync ``key``: bring ``dest_path`` (relative to
    the receiver's tree, an existing file at least as large) on the
    receiver at ``host:port`` up to the file ``source_path`` here.

    ``state_dir`` holds this side's saved signatures; ``peer`` (a dict) is
    saved with them, to find the destination again when the key is
    forgotten.  ``progress(bytes)`` gets the data bytes sent so far.
    Returns a :class:`SyncResult`; raises
    :class:`~overcloud_migrate.dtn.movers.base.MoverError` (or
    ``TransferCancelled``) naming the file and the cause.
    """
    return _Round(source_path, host, port, dest_path, key, token, state_dir,
                  streams, progress, cancel, timeout, block_size,
                  source_root, peer).run()


def forget(host, port, token, key, timeout=DEFAULT_TIMEOUT):
    """Ask the receiver at ``host:port`` to drop its signatures of ``key``;
    its count of files removed."""
    chan = _connect(host, port, _as_key(token), timeout)
    try:
        chan.send_msg({'op': 'sync_forget',
                       'key': delta_state.check_key(key)})
        reply = chan.recv_msg()
    except (OSError, EOFError) as exc:
        raise base.MoverError('cannot ask %s:%s to forget sync %s: %s' % (
            host, port, key, _describe(exc))) from None
    finally:
        _quiet_close(chan.sock)
    if not reply or not reply.get('ok'):
        raise base.MoverError('%s:%s could not forget sync %s: %s' % (
            host, port, key, (reply or {}).get('error', 'connection closed')))
    return reply.get('removed', 0)
