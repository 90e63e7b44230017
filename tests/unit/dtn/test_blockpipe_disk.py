"""How the builtin mover's receiver puts chunks on a disk: O_DIRECT for
the aligned bulk, buffered for the rest, and durable before it says so."""

import errno
import fcntl
import os

import pytest

from overcloud_migrate.dtn.movers import base
from overcloud_migrate.dtn.movers import blockpipe
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
    direct = partfile._open_direct(fd)
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
    align = partfile.DIRECT_ALIGN
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
