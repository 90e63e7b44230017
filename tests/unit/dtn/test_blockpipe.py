"""The builtin mover's data path, over real sockets on 127.0.0.1."""

import hashlib
import json
import os
import pathlib
import subprocess
import threading
import time

import pytest

from overcloud_migrate.dtn.movers import base
from overcloud_migrate.dtn.movers import blockpipe

TOKEN = 'test-token-not-a-secret'
KIB = 1024
MIB = 1024 * KIB
CHUNK = 256 * KIB
Z = blockpipe.ZERO_BLOCK


def _confine(root):
    def resolve(rel):
        if rel.startswith('/') or '..' in pathlib.PurePosixPath(rel).parts:
            raise ValueError('%r is outside the export' % rel)
        return str(root), rel
    return resolve


@pytest.fixture
def dest(tmp_path):
    root = tmp_path / 'dest'
    root.mkdir()
    return root


@pytest.fixture(params=['splice', 'read-check-write'])
def receiver(request, dest):
    """Both receive paths: splice then check in place, or via memory."""
    recv = blockpipe.Receiver('127.0.0.1', 0, _confine(dest), TOKEN,
                              use_splice=request.param == 'splice')
    recv.start()
    yield recv
    recv.stop()


def _write_image(path, layout, size):
    """Sparse file: ``layout`` is [(offset, length, 'random'|'zeros')]."""
    with open(path, 'wb') as fh:
        fh.truncate(size)
        for offset, length, kind in layout:
            fh.seek(offset)
            fh.write(os.urandom(length) if kind == 'random' else bytes(length))
    return path


# 4 MiB + 77 bytes: data, holes, written zeros, an unaligned tail.
LAYOUT = [
    (0, 512 * KIB, 'random'),
    # [512 KiB, 1 MiB) is a hole
    (1 * MIB, 256 * KIB, 'zeros'),
    (1 * MIB + 256 * KIB, 3 * Z, 'random'),
    (1 * MIB + 256 * KIB + 3 * Z, 2 * Z, 'zeros'),
    # then a hole up to 3 MiB
    (3 * MIB, 1 * MIB + 77, 'random'),
]
SIZE = 4 * MIB + 77
DATA = sum(length for _, length, kind in LAYOUT if kind == 'random')


@pytest.fixture
def image(tmp_path):
    return _write_image(tmp_path / 'disk.img', LAYOUT, SIZE)


def _send(source, receiver, rel='out/disk.img', **kwargs):
    kwargs.setdefault('chunk_size', CHUNK)
    return blockpipe.send(str(source), '127.0.0.1', receiver.port, rel,
                          kwargs.pop('token', TOKEN), **kwargs)


def _leftovers(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob('*')
                  if p.is_file())


def test_sparse_image_arrives_identical_and_sparse(image, receiver, dest):
    seen = []
    result = _send(image, receiver, streams=3, progress=seen.append)
    out = dest / 'out' / 'disk.img'
    assert out.read_bytes() == image.read_bytes()
    assert result.bytes == SIZE
    assert result.bytes_on_wire == DATA        # holes and zero blocks skipped
    assert out.stat().st_blocks * 512 <= DATA + 64 * KIB
    assert seen[-1] == SIZE and seen == sorted(seen)
    assert _leftovers(dest) == ['out/disk.img']


def test_data_segments_skip_holes_and_zero_blocks(image):
    hasher = hashlib.sha256()
    fd = os.open(image, os.O_RDONLY)
    try:
        segments = blockpipe.data_segments(fd, 0, SIZE, hasher=hasher)
    finally:
        os.close(fd)
    assert segments == [(0, 512 * KIB), (1 * MIB + 256 * KIB, 3 * Z),
                        (3 * MIB, 1 * MIB + 77)]
    content = image.read_bytes()
    assert hasher.digest() == hashlib.sha256(b''.join(
        content[off:off + length] for off, length in segments)).digest()


def test_without_chunk_hash(image, receiver, dest):
    result = _send(image, receiver, chunk_hash=False)
    assert (dest / 'out' / 'disk.img').read_bytes() == image.read_bytes()
    assert result.bytes_on_wire == DATA


def test_random_file_many_streams(tmp_path, receiver, dest):
    source = tmp_path / 'random.bin'
    source.write_bytes(os.urandom(3 * MIB + 5))
    result = _send(source, receiver, rel='random.bin', streams=8,
                   chunk_size=blockpipe.MIN_CHUNK_SIZE)
    assert (dest / 'random.bin').read_bytes() == source.read_bytes()
    assert result.bytes_on_wire == 3 * MIB + 5


def test_sha256_matches_hashlib(image, receiver, dest):
    result = _send(image, receiver, verify_sha256=True)
    assert result.sha256 == hashlib.sha256(image.read_bytes()).hexdigest()
    assert result.sha256 == hashlib.sha256(
        (dest / 'out' / 'disk.img').read_bytes()).hexdigest()


def test_empty_file(tmp_path, receiver, dest):
    source = tmp_path / 'empty'
    source.write_bytes(b'')
    result = _send(source, receiver, rel='empty', verify_sha256=True)
    assert (dest / 'empty').read_bytes() == b''
    assert result.bytes == result.bytes_on_wire == 0
    assert result.sha256 == hashlib.sha256(b'').hexdigest()


def test_existing_file_is_replaced(image, receiver, dest):
    (dest / 'out').mkdir()
    (dest / 'out' / 'disk.img').write_bytes(b'old content' * 1000)
    _send(image, receiver)
    assert (dest / 'out' / 'disk.img').read_bytes() == image.read_bytes()


def test_corrupted_chunk_is_sent_again(image, receiver, dest):
    # Chunks 0 and 5 each hold 256 KiB of data: both travel twice.
    faults = blockpipe.Faults(corrupt_chunks={0, 5})
    result = _send(image, receiver, streams=2, faults=faults)
    assert (dest / 'out' / 'disk.img').read_bytes() == image.read_bytes()
    assert result.bytes_on_wire == DATA + CHUNK + 2 * Z


def test_chunks_hashed_in_pieces_catch_damage_anywhere(tmp_path, receiver,
                                                      dest, monkeypatch):
    """Segments longer than the sender's read buffer and the receiver's
    hash piece, neither a multiple of the other: still identical, and a
    damaged chunk is caught and sent again."""
    from overcloud_migrate.dtn.movers.blockpipe import inbound as recv_mod
    from overcloud_migrate.dtn.movers.blockpipe import sender as send_mod
    monkeypatch.setattr(recv_mod, '_RECV_PIECE', 100_000)
    monkeypatch.setattr(send_mod, '_READ_SIZE', 3 * Z)
    source = tmp_path / 'random.bin'
    source.write_bytes(os.urandom(2 * MIB + MIB // 2 + 77))
    faults = blockpipe.Faults(corrupt_chunks={1, 2})
    result = _send(source, receiver, rel='random.bin', streams=2,
                   chunk_size=MIB, faults=faults)
    assert (dest / 'random.bin').read_bytes() == source.read_bytes()
    size = source.stat().st_size
    assert result.bytes_on_wire == size + MIB + (size - 2 * MIB)
    assert _leftovers(dest) == ['random.bin']


def test_receiver_writes_one_chunk_at_a_time(tmp_path, dest, monkeypatch):
    from overcloud_migrate.dtn.movers.blockpipe import receiver as recv_mod
    active = []
    most = []
    real_pwrite = os.pwrite

    def pwrite(fd, data, offset):
        active.append(offset)
        most.append(len(active))
        try:
            time.sleep(0.002)           # give another stream time to overlap
            return real_pwrite(fd, data, offset)
        finally:
            active.remove(offset)

    monkeypatch.setattr(recv_mod.os, 'pwrite', pwrite)
    source = tmp_path / 'random.bin'
    source.write_bytes(os.urandom(4 * MIB))
    with blockpipe.Receiver('127.0.0.1', 0, _confine(dest), TOKEN) as recv:
        _send(source, recv, rel='random.bin', streams=4)
    assert (dest / 'random.bin').read_bytes() == source.read_bytes()
    assert len(most) >= 16 and max(most) == 1


def test_dense_file_is_one_extent_without_lseek(tmp_path, monkeypatch):
    dense = tmp_path / 'dense'
    dense.write_bytes(os.urandom(MIB) + bytes(MIB))
    sparse = _write_image(tmp_path / 'sparse', [(0, Z, 'random')], MIB)
    seeks = []
    real_lseek = os.lseek
    monkeypatch.setattr(os, 'lseek',
                        lambda *args: seeks.append(args) or real_lseek(*args))
    fd = os.open(dense, os.O_RDONLY)
    try:
        assert blockpipe.data_extents(fd, 2 * MIB) == [(0, 2 * MIB)]
        assert seeks == []
        # the written zeros are still left out, by the zero-block scan
        assert blockpipe.data_segments(
            fd, 0, 2 * MIB, extents=[(0, 2 * MIB)]) == [(0, MIB)]
    finally:
        os.close(fd)
    fd = os.open(sparse, os.O_RDONLY)
    try:
        assert blockpipe.data_extents(fd, MIB) == [(0, Z)]
        assert seeks
    finally:
        os.close(fd)


def test_broken_connection_resumes_without_resending_good_chunks(
        image, receiver, dest):
    faults = blockpipe.Faults(break_chunks={12})   # 3 MiB: 256 KiB of data
    result = _send(image, receiver, streams=2, faults=faults)
    assert (dest / 'out' / 'disk.img').read_bytes() == image.read_bytes()
    # Only chunk 12 travelled twice: half of it before the break, then whole.
    assert DATA < result.bytes_on_wire <= DATA + CHUNK // 2


def test_new_send_resumes_from_the_receivers_journal(tmp_path, receiver,
                                                     dest):
    source = tmp_path / 'random.bin'
    source.write_bytes(os.urandom(16 * CHUNK))
    faults = blockpipe.Faults(stop_after_acks=6)
    with pytest.raises(base.MoverError, match='lost'):
        _send(source, receiver, rel='random.bin', streams=1, faults=faults)
    assert not (dest / 'random.bin').exists()
    assert (dest / 'random.bin.part').exists()
    assert (dest / 'random.bin.part.state').exists()

    seen = []
    result = _send(source, receiver, rel='random.bin', streams=3,
                   progress=seen.append)
    assert (dest / 'random.bin').read_bytes() == source.read_bytes()
    assert 0 < result.bytes_on_wire <= 10 * CHUNK   # 6+ chunks were kept
    assert seen[0] >= 6 * CHUNK
    assert _leftovers(dest) == ['random.bin']


def test_changed_source_starts_over(tmp_path, receiver, dest):
    source = tmp_path / 'random.bin'
    source.write_bytes(os.urandom(8 * CHUNK))
    with pytest.raises(base.MoverError):
        _send(source, receiver, rel='random.bin', streams=1,
              faults=blockpipe.Faults(stop_after_acks=3))
    source.write_bytes(os.urandom(8 * CHUNK))
    os.utime(source, ns=(1, 1))
    result = _send(source, receiver, rel='random.bin')
    assert result.bytes_on_wire == 8 * CHUNK
    assert (dest / 'random.bin').read_bytes() == source.read_bytes()


def test_bad_token_is_refused_and_nothing_written(image, receiver, dest):
    with pytest.raises(base.MoverError, match='token'):
        _send(image, receiver, token='not-the-token')
    assert _leftovers(dest) == []
    assert list(dest.iterdir()) == []


def test_refused_path_writes_nothing(image, receiver, dest):
    with pytest.raises(base.MoverError, match='refused.*outside the export'):
        _send(image, receiver, rel='../escape.img')
    assert list(dest.iterdir()) == []
    assert not (dest.parent / 'escape.img').exists()
    assert not (dest.parent / 'escape.img.part').exists()


def test_cancel_leaves_no_final_file(image, receiver, dest):
    cancel = threading.Event()
    with pytest.raises(base.TransferCancelled, match='cancelled'):
        _send(image, receiver, streams=1, progress=lambda done: cancel.set(),
              cancel=cancel, keep_partial=False)
    assert _leftovers(dest) == []


def test_cancel_keeps_a_resumable_partial(image, receiver, dest):
    cancel = threading.Event()
    with pytest.raises(base.TransferCancelled):
        _send(image, receiver, streams=1, progress=lambda done: cancel.set(),
              cancel=cancel)
    assert not (dest / 'out' / 'disk.img').exists()
    assert (dest / 'out' / 'disk.img.part').exists()
    _send(image, receiver)
    assert (dest / 'out' / 'disk.img').read_bytes() == image.read_bytes()


def test_missing_source_names_the_file(tmp_path, receiver):
    with pytest.raises(base.MoverError, match='nope.img'):
        _send(tmp_path / 'nope.img', receiver)


def test_unreachable_port_is_unavailable(image):
    with pytest.raises(base.MoverUnavailable, match='cannot reach'):
        blockpipe.send(str(image), '127.0.0.1', 9, 'x', TOKEN, timeout=5)


def test_probe(receiver):
    blockpipe.probe('127.0.0.1', receiver.port)
    blockpipe.probe('127.0.0.1', receiver.port, token=TOKEN)
    with pytest.raises(base.MoverError, match='token'):
        blockpipe.probe('127.0.0.1', receiver.port, token='wrong')


def test_empty_token_is_rejected(dest):
    with pytest.raises(ValueError):
        blockpipe.Receiver('127.0.0.1', 0, _confine(dest), '')


@pytest.fixture
def small_fs(tmp_path):
    """A real 1 MiB tmpfs (needs root to mount)."""
    if os.geteuid() != 0:
        pytest.skip('mounting a small tmpfs needs root')
    mnt = tmp_path / 'small'
    mnt.mkdir()
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'tmpfs',
                           str(mnt)], capture_output=True)
    if done.returncode:
        pytest.skip('cannot mount a tmpfs here: %s' % done.stderr.decode())
    yield mnt
    subprocess.run(['umount', str(mnt)], check=True)


def test_disk_full_fails_and_removes_the_partial(tmp_path, small_fs):
    source = tmp_path / 'random.bin'
    source.write_bytes(os.urandom(3 * MIB))
    with blockpipe.Receiver('127.0.0.1', 0, _confine(small_fs), TOKEN) as recv:
        with pytest.raises(base.MoverError, match='No space left on device'):
            _send(source, recv, rel='random.bin')
    assert list(small_fs.iterdir()) == []


@pytest.mark.parametrize('seed', range(5))
def test_data_segments_rebuild_the_file(tmp_path, seed):
    import random
    rnd = random.Random(seed)
    size = rnd.randrange(1, 3 * MIB)
    layout = []
    for _ in range(rnd.randrange(1, 8)):
        offset = rnd.randrange(0, size)
        length = rnd.randrange(1, min(size - offset, 700 * KIB) + 1)
        layout.append((offset, length, rnd.choice(['random', 'zeros'])))
    path = _write_image(tmp_path / 'f', layout, size)
    content = path.read_bytes()
    fd = os.open(path, os.O_RDONLY)
    try:
        segments = blockpipe.data_segments(fd, 0, size)
        assert blockpipe.data_segments(fd, 0, size, probe=True) == segments
        extents = blockpipe.data_extents(fd, size)
        assert blockpipe.data_segments(fd, 0, size,
                                       extents=extents) == segments
        assert blockpipe.data_segments(
            fd, 100_000, min(size, 1_300_000), extents=extents) == \
            blockpipe.data_segments(fd, 100_000, min(size, 1_300_000))
        # any chunk window gives the same data
        window = blockpipe.data_segments(fd, 100_000, min(size, 1_300_000))
    finally:
        os.close(fd)
    rebuilt = bytearray(size)
    for offset, length in segments:
        rebuilt[offset:offset + length] = content[offset:offset + length]
    assert bytes(rebuilt) == content
    for offset, length in window:
        assert 100_000 <= offset and offset + length <= min(size, 1_300_000)


def test_concurrent_journal_saves_never_clobber_each_other(tmp_path):
    """Data threads save the chunk journal at the same time; each save
    must complete (one .tmp name is shared), and the journal stays
    valid."""
    from overcloud_migrate.dtn.movers.blockpipe import partfile
    incoming = partfile.Incoming(str(tmp_path), 'disk.img', 64 * 1024 * 1024,
                                 1024 * 1024, 'id-1')
    incoming.open()
    errors = []

    def save(index):
        try:
            for _ in range(50):
                incoming.mark_good(index)
                incoming.flush_state(force=True)
        except OSError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    incoming.close_fd()
    assert errors == []
    journal = json.loads((tmp_path / 'disk.img.part.state').read_text())
    assert journal['size'] == 64 * 1024 * 1024
    assert not (tmp_path / 'disk.img.part.state.tmp').exists()
