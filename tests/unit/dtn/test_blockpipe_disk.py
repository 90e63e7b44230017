"""How the builtin mover's receiver puts chunks on a disk: O_DIRECT for
the aligned bulk, buffered for the rest, and durable before it says so."""

import errno
import fcntl
import json
import os
import stat
import threading
import time

import pytest

from overcloud_migrate.dtn.movers import base
from overcloud_migrate.dtn.movers import blockpipe
from overcloud_migrate.dtn.movers.blockpipe import direct as direct_io
from overcloud_migrate.dtn.movers.blockpipe import partfile

from tests.unit.dtn.test_blockpipe import (
    CHUNK, DATA, LAYOUT, SIZE, TOKEN, _confine, _send, _write_image)


def _has_direct(fd):
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, 'O_DIRECT', 0))


@pytest.fixture
def image(tmp_path):
    return _write_image(tmp_path / 'disk.img', LAYOUT, SIZE)


@pytest.fixture
def dest(tmp_path):
    root = tmp_path / 'dest'
    root.mkdir()
    probe = root / 'probe'
    fd = os.open(probe, os.O_RDWR | os.O_CREAT)
    direct = direct_io.open_direct(fd)
    os.close(fd)
    probe.unlink()
    if direct is None:
        pytest.skip('this file system refuses O_DIRECT')
    os.close(direct)
    return root


@pytest.fixture
def writes(monkeypatch):
    """Every pwrite: (with O_DIRECT?, offset, length)."""
    seen = []
    real = os.pwrite

    def pwrite(fd, data, offset):
        seen.append((_has_direct(fd), offset, len(data)))
        return real(fd, data, offset)

    monkeypatch.setattr(os, 'pwrite', pwrite)
    return seen


def _receiver(dest, **kwargs):
    return blockpipe.Receiver('127.0.0.1', 0, _confine(dest), TOKEN,
                              **kwargs)


def test_aligned_chunk_data_bypasses_the_page_cache(image, dest, writes):
    with _receiver(dest) as recv:
        _send(image, recv, streams=3)
    assert (dest / 'out' / 'disk.img').read_bytes() == image.read_bytes()
    direct = [(offset, n) for d, offset, n in writes if d]
    buffered = [(offset, n) for d, offset, n in writes if not d]
    align = direct_io.ALIGN
    assert all(offset % align == 0 and n % align == 0 for offset, n in direct)
    # only the file's unaligned tail (77 bytes) went through the page cache
    tail = SIZE - SIZE % align
    assert buffered == [(tail, SIZE - tail)]
    assert sum(n for _, n in direct) == DATA - (SIZE - tail)


def test_direct_io_off_writes_through_the_page_cache(image, dest, writes):
    with _receiver(dest, direct_io=False) as recv:
        _send(image, recv, streams=2)
    assert (dest / 'out' / 'disk.img').read_bytes() == image.read_bytes()
    assert writes and not any(d for d, _, _ in writes)
    assert sum(n for _, _, n in writes) == DATA


def test_refused_direct_writes_fall_back_to_buffered(image, dest,
                                                     monkeypatch):
    """A file system that opens with O_DIRECT but refuses the writes
    (EINVAL): the chunk is written buffered, and so is the rest."""
    refused = []
    real = os.pwrite

    def pwrite(fd, data, offset):
        if _has_direct(fd):
            refused.append(offset)
            raise OSError(errno.EINVAL, 'Invalid argument')
        return real(fd, data, offset)

    monkeypatch.setattr(os, 'pwrite', pwrite)
    with _receiver(dest) as recv:
        _send(image, recv, streams=1)
    assert (dest / 'out' / 'disk.img').read_bytes() == image.read_bytes()
    assert len(refused) == 1          # then that file stopped trying


def test_a_failing_direct_write_fails_the_transfer_cleanly(tmp_path, dest,
                                                           monkeypatch):
    """An I/O error on the O_DIRECT path is a write error like any other:
    the partial file is removed and the sender is told."""
    source = tmp_path / 'random.bin'
    source.write_bytes(os.urandom(4 * CHUNK))
    real = os.pwrite

    def pwrite(fd, data, offset):
        if _has_direct(fd):
            raise OSError(errno.EIO, 'Input/output error')
        return real(fd, data, offset)

    monkeypatch.setattr(os, 'pwrite', pwrite)
    with _receiver(dest) as recv:
        with pytest.raises(base.MoverError,
                           match='Input/output error'):
            _send(source, recv, rel='random.bin', retries=0)
    assert sorted(p.name for p in dest.iterdir()) == []
def test_journal_lists_only_synced_chunks_and_commit_syncs_first(
        tmp_path, dest, monkeypatch):
    """Durability with O_DIRECT as before: a chunk enters the resume
    journal only after an fdatasync that began after its data was written,
    and the commit answers only after fsync of the file, then its rename,
    then fsync of the directory."""
    lock = threading.Lock()
    written = set()          # chunks whose data write has returned
    synced = set()           # chunks covered by a completed fdatasync
    unsynced_in_journal = []
    journaled = [0]
    events = []
    real_pwrite, real_fdatasync = os.pwrite, os.fdatasync
    real_fsync, real_replace = os.fsync, os.replace

    def pwrite(fd, data, offset):
        n = real_pwrite(fd, data, offset)
        with lock:
            written.add(offset // CHUNK)
        return n

    def fdatasync(fd):
        with lock:
            covered = set(written)
        real_fdatasync(fd)
        with lock:
            synced.update(covered)

    def fsync(fd):
        real_fsync(fd)
        kind = 'dir' if stat.S_ISDIR(os.fstat(fd).st_mode) else 'file'
        events.append(('fsync', kind))

    def replace(src, dst, **kwargs):
        real_replace(src, dst, **kwargs)
        events.append(('replace', dst))
        if dst.endswith('.part.state'):
            body = json.loads((dest / dst).read_text())
            good = partfile._decode_bitmap(body['good'], 16)
            journaled.append(sum(good))
            with lock:
                unsynced_in_journal.extend(
                    i for i in range(16) if good[i] and i not in synced)

    monkeypatch.setattr(os, 'pwrite', pwrite)
    monkeypatch.setattr(os, 'fdatasync', fdatasync)
    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'replace', replace)
    source = tmp_path / 'random.bin'
    source.write_bytes(os.urandom(16 * CHUNK))
    # stop after some chunks: the journal is saved with chunks in it
    with _receiver(dest) as recv:
        with pytest.raises(base.MoverError, match='lost'):
            _send(source, recv, rel='random.bin', streams=3,
                  faults=blockpipe.Faults(stop_after_acks=7))
        # the receiver notices the sender went away and saves its journal
        deadline = time.monotonic() + 30
        while recv._transfers and time.monotonic() < deadline:
            time.sleep(0.01)
        _send(source, recv, rel='random.bin', streams=3)
    assert max(journaled) >= 7        # the journal did list chunks
    assert unsynced_in_journal == []
    assert (dest / 'random.bin').read_bytes() == source.read_bytes()
    assert events[-3:] == [('fsync', 'file'), ('replace', 'random.bin'),
                           ('fsync', 'dir')]


def test_a_chunk_written_again_takes_no_more_quota(tmp_path):
    """A resent chunk (lost acknowledgement, resumed sender) overwrites its
    own blocks: the quota counts what the file holds, so the transfer goes
    on; data beyond the declared amount is still refused."""
    chunk = 1024 * 1024
    incoming = partfile.Incoming(str(tmp_path), 'disk.img', 64 * chunk,
                                 chunk, 'id-1')
    incoming.open()
    try:
        incoming.quota = 4 * chunk
        block = memoryview(os.urandom(chunk))
        for _ in range(5):
            incoming.write([(0, block)])
        for index in range(1, 4):
            incoming.write([(index * chunk, block)])
        with pytest.raises(OSError) as raised:
            for index in range(4, 8):
                incoming.write([(index * chunk, block)])
        assert raised.value.errno == errno.EDQUOT
        # the chunk refused was not written: no data from it on (the quota
        # let in the declared 4 chunks, the one-chunk slack and the file
        # system's slack of one more)
        refused = 6 * chunk
        with pytest.raises(OSError) as past:
            os.lseek(incoming.fd, refused, os.SEEK_DATA)
        assert past.value.errno == errno.ENXIO
        # what the file holds: those 6 chunks, and the file system's own
        # blocks (an extent tree block when the disk is fragmented)
        assert incoming.allocated() <= refused + 64 * 1024
    finally:
        incoming.close_fd()


@pytest.fixture
def reads(monkeypatch):
    """Every preadv: (with O_DIRECT?, offset, bytes asked)."""
    seen = []
    real = os.preadv

    def preadv(fd, buffers, offset, *args):
        seen.append((_has_direct(fd), offset, sum(len(b) for b in buffers)))
        return real(fd, buffers, offset, *args)

    monkeypatch.setattr(os, 'preadv', preadv)
    return seen


def test_sender_reads_chunks_with_o_direct_and_still_skips_zeros(
        image, dest, reads):
    with _receiver(dest) as recv:
        result = _send(image, recv, streams=2)
    assert (dest / 'out' / 'disk.img').read_bytes() == image.read_bytes()
    assert result.bytes_on_wire == DATA       # zero blocks found in memory
    direct = [(offset, n) for d, offset, n in reads if d]
    assert direct
    assert all(offset % direct_io.ALIGN == 0 and n % direct_io.ALIGN == 0
               for offset, n in direct)


@pytest.mark.parametrize('kwargs', [{'direct_io': False},
                                    {'chunk_hash': False},
                                    {'chunk_size': 100_000}])
def test_sender_without_o_direct_reads(image, dest, reads, kwargs):
    """Turned off, without the chunk hash (sendfile), or chunks whose
    starts O_DIRECT cannot take: read the ordinary way, same result."""
    with _receiver(dest) as recv:
        result = _send(image, recv, streams=2, **kwargs)
    assert (dest / 'out' / 'disk.img').read_bytes() == image.read_bytes()
    assert result.bytes_on_wire == DATA
    if 'chunk_size' not in kwargs:
        assert not any(d for d, _, _ in reads)


@pytest.mark.parametrize('seed', range(6))
def test_direct_chunk_read_finds_the_segments_data_segments_finds(
        tmp_path, seed):
    import random
    rnd = random.Random(seed)
    size = rnd.randrange(1, 3 * 1024 * 1024)
    layout = []
    for _ in range(rnd.randrange(1, 8)):
        offset = rnd.randrange(0, size)
        length = rnd.randrange(1, min(size - offset, 700 * 1024) + 1)
        layout.append((offset, length, rnd.choice(['random', 'zeros'])))
    path = _write_image(tmp_path / 'f', layout, size)
    content = path.read_bytes()
    chunk = rnd.choice([64 * 1024, 256 * 1024, 1024 * 1024])
    fd = os.open(path, os.O_RDONLY)
    dfd = direct_io.open_direct(fd, os.O_RDONLY)
    if dfd is None:
        os.close(fd)
        pytest.skip('this file system refuses O_DIRECT')
    buf = direct_io.AlignedBuffer(chunk)
    try:
        extents = blockpipe.data_extents(fd, size)
        for start in range(0, size, chunk):
            end = min(size, start + chunk)
            from overcloud_migrate.dtn.movers.blockpipe.extents import _clip
            segments = direct_io.read_chunk(dfd, buf, start,
                                            _clip(extents, start, end))
            assert segments == blockpipe.data_segments(fd, start, end)
            for offset, length in segments:
                assert bytes(buf.view[offset - start:offset - start
                                      + length]) == \
                    content[offset:offset + length]
    finally:
        buf.release()
        os.close(dfd)
        os.close(fd)


def test_sender_reads_written_zeros_through_the_page_cache(tmp_path, dest,
                                                           reads):
    """Chunks of mostly written zeros (a VM image's free space): after
    the first, the sender probes them through the page cache (read-ahead,
    zero blocks skipped unread) instead of reading every byte with
    O_DIRECT; data-heavy chunks go back to O_DIRECT."""
    chunk = 1024 * 1024       # a zero block (128 KiB) of data is 1/8 of it
    layout = [(0, 16 * chunk, 'zeros')]
    layout += [(n * chunk, 4096, 'random') for n in range(16)]
    layout += [(16 * chunk, 8 * chunk, 'random')]
    source = _write_image(tmp_path / 'vm.img', layout, 24 * chunk)
    with _receiver(dest) as recv:
        _send(source, recv, rel='vm.img', streams=1, chunk_size=chunk)
    assert (dest / 'vm.img').read_bytes() == source.read_bytes()
    direct = {offset // chunk for d, offset, _ in reads if d}
    buffered = {offset // chunk for d, offset, _ in reads if not d
                and offset < 24 * chunk}
    assert direct & set(range(16)) == {0}       # one zero-heavy chunk only
    assert set(range(1, 16)) <= buffered
    assert set(range(17, 24)) <= direct         # data again: O_DIRECT


# -- writeback started as data arrives ----------------------------------------

def test_start_writeback_writes_a_range_to_the_disk_without_waiting(
        tmp_path):
    from overcloud_migrate.dtn.movers.blockpipe import extents
    path = tmp_path / 'file'
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        os.pwrite(fd, os.urandom(256 * 1024), 0)
        assert extents.start_writeback(fd, 0, 256 * 1024) is True
        os.fdatasync(fd)
    finally:
        os.close(fd)
    # a descriptor that is not open is refused quietly: nothing raised
    assert extents.start_writeback(fd, 0, 4096) is False


@pytest.fixture
def writebacks(monkeypatch):
    """Every writeback asked for: (module, offset, length)."""
    from overcloud_migrate.dtn.movers.blockpipe import delta_receiver
    seen = []
    for module in (partfile, delta_receiver):
        real = module.start_writeback

        def spy(fd, offset, length, _real=real, _name=module.__name__):
            seen.append((_name.rsplit('.', 1)[1], offset, length))
            return _real(fd, offset, length)
        monkeypatch.setattr(module, 'start_writeback', spy)
    return seen


def test_buffered_chunk_writes_start_their_writeback(image, dest, writes,
                                                     writebacks):
    with _receiver(dest, direct_io=False) as recv:
        _send(image, recv, streams=2)
    assert (dest / 'out' / 'disk.img').read_bytes() == image.read_bytes()
    # every byte written through the page cache was sent to the disk at once,
    # not left for the commit's fsync
    asked = sorted((offset, n) for mod, offset, n in writebacks
                   if mod == 'partfile')
    assert sum(n for _, n in asked) == DATA
    assert asked == sorted((offset, n) for _, offset, n in writes)


def test_sync_rounds_start_the_writeback_of_every_extent(tmp_path, dest,
                                                         writes, writebacks):
    from overcloud_migrate.dtn.movers.blockpipe import delta_receiver
    from overcloud_migrate.dtn.movers.blockpipe import delta_sender
    source = _write_image(tmp_path / 'src.img', LAYOUT, SIZE)
    target = dest / 'vol.img'
    with open(target, 'wb') as fh:
        fh.truncate(SIZE)
    recv = _receiver(dest)
    delta_receiver.install(recv, str(tmp_path / 'state-b'))
    with recv:
        result = delta_sender.sync(str(source), '127.0.0.1', recv.port,
                                   'vol.img', TOKEN, 'vol-1',
                                   str(tmp_path / 'state-a'), streams=2)
    assert target.read_bytes() == source.read_bytes()
    asked = sorted((offset, n) for mod, offset, n in writebacks
                   if mod == 'delta_receiver')
    assert sum(n for _, n in asked) == result.bytes > 0
    assert asked == sorted((offset, n) for _, offset, n in writes)
