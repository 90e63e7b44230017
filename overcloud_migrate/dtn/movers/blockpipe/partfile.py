"""The receiver's file being written: ``<name>.part`` and its journal.

Every name is opened relative to a descriptor of the destination
directory, itself reached from the export root one component at a time with
``O_NOFOLLOW`` (:func:`overcloud_migrate.dtn.paths.split_beneath`): a
directory swapped for a symlink after the path check leads nowhere.

Writes: the chunk data goes to the disk with ``O_DIRECT`` (a second
descriptor of the same open ``.part``, :func:`.direct.open_direct`) wherever
offset, length and buffer are block-aligned, which is every byte but the
file's unaligned tail: no copy into the page cache, and no page-cache
writeback for the receiving process to pay for (on an ext4 disk a
buffered write plus its later ``fdatasync`` cost it about ten times the
CPU of the same write with ``O_DIRECT``).  Where ``O_DIRECT`` is refused
(some file systems), writes are buffered and their writeback is started
at once.

Durability: ``<name>.part.state`` lists the chunks known good.  A chunk
enters it only after its data went through ``fdatasync``; that happens in
:meth:`Incoming.flush_state`, which the receiver calls from a background
thread every :data:`~.wire.STATE_FLUSH_SECONDS` (never from a stream's
receive path, so no stream waits for the disk), and on close.  The commit
fsyncs the file, renames it and fsyncs the directory: what a commit reports
is on disk.
"""

import errno
import json
import logging
import os
import posixpath
import secrets
import stat
import threading
import time
import zlib

from overcloud_migrate.dtn import paths
from overcloud_migrate.dtn.movers.blockpipe import direct as _direct
from overcloud_migrate.dtn.movers.blockpipe.extents import (
    _punch_hole,
    start_writeback)
from overcloud_migrate.dtn.movers.blockpipe.wire import (
    ProtocolError,
    STATE_FLUSH_SECONDS,
    _chunk_count,
    _decode_bitmap,
    _encode_bitmap)

LOG = logging.getLogger(__name__)

#: room above the declared data a file may take (file system rounding)
_QUOTA_SLACK = 1024 * 1024


def _pwrite_all(fd, data, offset):
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)


class Incoming:
    """One destination file being written (shared by its connections)."""

    def __init__(self, root, relative, size, chunk_size, identity,
                 direct_io=True):
        self.root = root
        self.relative = relative
        self.final = posixpath.join(root, relative)   # for messages only
        self.size = size
        self.chunk_size = chunk_size
        self.identity = identity
        self.nchunks = _chunk_count(size, chunk_size)
        self.tid = secrets.token_hex(16)
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()   # one chunk written at a time
        # One journal save at a time, and none once the file is committed.
        self.save_lock = threading.Lock()
        self.refs = 0
        self.fd = None
        self.dir_fd = None
        self.direct_io = direct_io
        self.direct_fd = None     # the .part again, with O_DIRECT
        self.name = None
        self.good = bytearray(self.nchunks)
        self.finished = False     # committed, failed or discarded
        self.error = None         # why it failed, told to every stream
        self.closing = False      # last connection gone, state being saved
        self.last_flush = time.monotonic()
        self.dirty = False
        self.written = 0          # data bytes written (resent ones again)
        self.quota = None

    @property
    def part(self):
        return self.final + '.part'

    def _names(self):
        return (self.name + '.part', self.name + '.part.state',
                self.name + '.part.state.tmp')

    def open(self):
        self.dir_fd, self.name = paths.split_beneath(
            self.root, self.relative, create_dirs=True)
        try:
            st = os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISDIR(st.st_mode):
                raise OSError(errno.EISDIR, 'is a directory', self.final)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        self.fd = os.open(self._names()[0], flags, 0o644, dir_fd=self.dir_fd)
        st = os.fstat(self.fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, 'not a regular file', self.part)
        if not self._load_state(st.st_size):
            self.good = bytearray(self.nchunks)
            os.ftruncate(self.fd, 0)
            os.ftruncate(self.fd, self.size)
            self.flush_state(force=True)
        if self.direct_io:
            self.direct_fd = _direct.open_direct(self.fd)

    def allocated(self):
        """Bytes the .part holds on disk now (for a resume's quota)."""
        return os.fstat(self.fd).st_blocks * 512 if self.fd is not None else 0

    def _load_state(self, part_size):
        try:
            fd = os.open(self._names()[1], os.O_RDONLY | os.O_NOFOLLOW,
                         dir_fd=self.dir_fd)
            with os.fdopen(fd, 'rb') as fh:
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
        with self.save_lock:
            self._flush_state(force)

    def _flush_state(self, force):
        if self.fd is None or self.finished:
            return
        now = time.monotonic()
        if not force and (not self.dirty
                          or now - self.last_flush < STATE_FLUSH_SECONDS):
            return
        # Snapshot first: only chunks written before the fdatasync are
        # recorded as good.
        with self.lock:
            good = bytes(self.good)
            self.dirty = False
        os.fdatasync(self.fd)
        body = json.dumps({'v': 1, 'identity': self.identity,
                           'size': self.size, 'chunk_size': self.chunk_size,
                           'good': _encode_bitmap(good)}).encode('utf-8')
        _, state, tmp = self._names()
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        fd = os.open(tmp, flags, 0o600, dir_fd=self.dir_fd)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, state, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        self.last_flush = now

    def write(self, parts):
        """Write [(offset, buffer)] of one chunk; OSError on failure.

        The quota is checked against what the file holds on disk, not a
        count of bytes received: a chunk sent again (its acknowledgement
        was lost, or a resumed sender re-sends what was in flight) lands on
        its own blocks and takes no more room.  The slack of one chunk
        covers that double count and the file system's rounding.
        """
        size = sum(len(part) for _, part in parts)
        # One writer per file at a time: the kernel takes the inode lock
        # for each buffered write anyway, and its waiters spin on the CPU
        # while the holder copies; waiting here sleeps instead.
        with self.write_lock:
            if self.quota is not None:
                limit = self.quota + self.chunk_size + _QUOTA_SLACK
                if self.allocated() + size > limit:
                    raise OSError(errno.EDQUOT, 'the sender declared %d data '
                                  'bytes and sent more' % self.quota)
            with self.lock:
                self.written += size
            for offset, part in parts:
                self._write_part(offset, part)

    def _write_part(self, offset, part):
        """The aligned bulk with O_DIRECT, whatever is left buffered."""
        direct = 0
        align = _direct.ALIGN
        if (self.direct_fd is not None and offset % align == 0
                and len(part) >= align):
            address = _direct.address(part)
            if address is not None and address % align == 0:
                direct = len(part) - len(part) % align
        if direct:
            try:
                _pwrite_all(self.direct_fd, part[:direct], offset)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                # This file system takes O_DIRECT opens but not these
                # writes: buffered from now on (the range is rewritten).
                LOG.info('%s: O_DIRECT writes refused (%s); buffered from '
                         'now on', self.part, exc)
                self._close_direct()
                direct = 0
        if direct < len(part):
            _pwrite_all(self.fd, part[direct:], offset + direct)
            start_writeback(self.fd, offset + direct, len(part) - direct)

    def _close_direct(self):
        if self.direct_fd is not None:
            os.close(self.direct_fd)
            self.direct_fd = None

    def mark_good(self, index):
        with self.lock:
            self.good[index] = 1
            self.dirty = True

    def missing(self):
        with self.lock:
            return self.nchunks - sum(self.good)

    def remove_partial(self):
        # Under the save lock: a journal save that is under way must not
        # write its state file back after the removal.
        with self.save_lock:
            if self.dir_fd is None:
                return
            for name in self._names():
                try:
                    os.unlink(name, dir_fd=self.dir_fd)
                except FileNotFoundError:
                    pass

    def commit(self):
        """fsync, rename to the final name, fsync the directory."""
        os.fsync(self.fd)
        part, state, _ = self._names()
        with self.save_lock:
            os.replace(part, self.name, src_dir_fd=self.dir_fd,
                       dst_dir_fd=self.dir_fd)
            with self.lock:
                self.finished = True
            try:
                os.unlink(state, dir_fd=self.dir_fd)
            except FileNotFoundError:
                pass
        os.fsync(self.dir_fd)

    def close_fd(self):
        self._close_direct()
        for attr in ('fd', 'dir_fd'):
            fd = getattr(self, attr)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)
