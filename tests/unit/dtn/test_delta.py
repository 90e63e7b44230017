"""Block signatures and deltas: only what changed, and damage is caught."""

import os
import random

import pytest

from overcloud_migrate.dtn import delta

BLOCK = delta.DEFAULT_BLOCK_SIZE


def _file(path, size, seed=0, sparse=False):
    rnd = random.Random(seed)
    with open(path, 'wb') as handle:
        if sparse:
            handle.truncate(size)
            for offset in range(0, size, 16 * BLOCK):
                handle.seek(offset)
                handle.write(rnd.randbytes(min(BLOCK, size - offset)))
        else:
            handle.write(rnd.randbytes(size))
    return path


def _rewrite(path, offsets, seed=1):
    rnd = random.Random(seed)
    with open(path, 'r+b') as handle:
        for offset in offsets:
            handle.seek(offset)
            handle.write(rnd.randbytes(BLOCK))


def _sync(src, dst, src_record, dst_record):
    """One round, as the two DTNs run it (without the network)."""
    bad = delta.verify(dst, dst_record)
    now = delta.compute(src)
    todo = sorted(set(delta.changed(src_record, now)) | set(bad))
    sent = 0
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY)
    try:
        for offset, length in delta.extents(todo, now):
            data = delta.read_extent(sfd, offset, length, src_record)
            digests = delta._digests_of(data, BLOCK)
            delta.write_extent(dfd, offset, data, dst_record, digests)
            sent += length
    finally:
        os.close(sfd)
        os.close(dfd)
    return sent, bad


def test_a_round_moves_only_the_changed_blocks_and_ends_identical(tmp_path):
    size = 300 * BLOCK + 123                 # a short last block too
    src = _file(tmp_path / 'src', size)
    dst = tmp_path / 'dst'
    with open(dst, 'wb') as handle:
        handle.truncate(size)
    src_record = delta.Signature.of_zeros(size)
    dst_record = delta.Signature.of_zeros(size)

    first, _ = _sync(src, dst, src_record, dst_record)
    assert first == size and dst.read_bytes() == src.read_bytes()

    _rewrite(src, [0, 7 * BLOCK, 8 * BLOCK, 299 * BLOCK])
    second, _ = _sync(src, dst, src_record, dst_record)

    assert second == 4 * BLOCK
    assert dst.read_bytes() == src.read_bytes()
    assert src_record == dst_record == delta.compute(src)
    third, _ = _sync(src, dst, src_record, dst_record)
    assert third == 0


def test_a_damaged_destination_block_is_caught_and_sent_again(tmp_path):
    size = 64 * BLOCK
    src = _file(tmp_path / 'src', size)
    dst = tmp_path / 'dst'
    dst.write_bytes(src.read_bytes())
    src_record = delta.compute(src)
    dst_record = delta.compute(dst)
    with open(dst, 'r+b') as handle:       # one flipped byte in block 5
        handle.seek(5 * BLOCK + 17)
        handle.write(b'\xff' if src.read_bytes()[5 * BLOCK + 17] != 0xff
                     else b'\0')

    sent, bad = _sync(src, dst, src_record, dst_record)

    assert bad == [5] and sent == BLOCK
    assert dst.read_bytes() == src.read_bytes()


def test_holes_are_not_read_but_hash_as_zeros(tmp_path):
    size = 256 * BLOCK
    sparse = _file(tmp_path / 'sparse', size, sparse=True)
    dense = tmp_path / 'dense'
    dense.write_bytes(sparse.read_bytes())      # the same bytes, allocated

    assert delta.compute(sparse) == delta.compute(dense)
    assert delta.compute(tmp_path / 'sparse', 8 * BLOCK) == \
        delta.compute(dense, 8 * BLOCK)


def test_extents_coalesce_neighbours_up_to_a_maximum():
    sig = delta.Signature.of_zeros(100 * BLOCK + 10)
    assert delta.extents([1, 2, 3, 7, 100], sig) == [
        (BLOCK, 3 * BLOCK), (7 * BLOCK, BLOCK), (100 * BLOCK, 10)]
    assert delta.extents([0, 1, 2, 3], sig, max_length=2 * BLOCK) == [
        (0, 2 * BLOCK), (2 * BLOCK, 2 * BLOCK)]
    assert delta.extents([], sig) == []


def test_a_damaged_extent_is_refused_before_it_is_written(tmp_path):
    dst = tmp_path / 'dst'
    dst.write_bytes(bytes(4 * BLOCK))
    record = delta.Signature.of_zeros(4 * BLOCK)
    data = random.Random(3).randbytes(BLOCK)
    digests = delta._digests_of(data, BLOCK)
    damaged = bytes([data[0] ^ 1]) + data[1:]

    fd = os.open(dst, os.O_WRONLY)
    try:
        with pytest.raises(delta.SignatureError, match='arrived damaged'):
            delta.write_extent(fd, BLOCK, damaged, record, digests)
    finally:
        os.close(fd)

    assert dst.read_bytes() == bytes(4 * BLOCK)
    assert record == delta.Signature.of_zeros(4 * BLOCK)


def test_misaligned_extents_are_refused():
    sig = delta.Signature.of_zeros(4 * BLOCK)
    with pytest.raises(delta.SignatureError, match='block boundary'):
        delta._record(sig, 10, bytes(BLOCK))
    with pytest.raises(delta.SignatureError, match='block boundary'):
        delta._record(sig, 0, bytes(BLOCK + 1))


def test_signatures_save_and_load_and_damage_is_named(tmp_path):
    src = _file(tmp_path / 'src', 10 * BLOCK + 5)
    sig = delta.compute(src)
    path = tmp_path / 'src.sig'

    sig.save(path)
    assert delta.Signature.load(path) == sig

    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(delta.SignatureError, match='is damaged'):
        delta.Signature.load(path)
    path.write_bytes(b'x' * 10)
    with pytest.raises(delta.SignatureError, match='truncated'):
        delta.Signature.load(path)
    with pytest.raises(delta.SignatureError, match='Cannot read'):
        delta.Signature.load(tmp_path / 'missing.sig')


def test_signatures_of_different_files_are_not_compared():
    with pytest.raises(delta.SignatureError, match='different files'):
        delta.changed(delta.Signature.of_zeros(BLOCK),
                      delta.Signature.of_zeros(2 * BLOCK))
    with pytest.raises(delta.SignatureError, match='must divide'):
        delta.Signature(3000, BLOCK)


def test_compute_fd_and_record(tmp_path):
    path = _file(tmp_path / 'f', 40 * BLOCK + 9, sparse=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert delta.compute_fd(fd) == delta.compute(path)
    finally:
        os.close(fd)
    sig = delta.Signature.of_zeros(40 * BLOCK + 9)
    data = path.read_bytes()
    delta.record(sig, 0, data[:8 * BLOCK])
    delta.record(sig, 16 * BLOCK, data[16 * BLOCK:])
    mine = delta.compute(path)
    assert delta.changed(sig, mine) == []
    with pytest.raises(delta.SignatureError):
        delta.record(sig, 1, b'x')


@pytest.mark.parametrize('size', [12 * BLOCK, 12 * BLOCK + 9])
def test_recorded_zeros_have_the_digests_of_zeros_hashed(tmp_path, size):
    path = _file(tmp_path / 'f', size, seed=3)
    quick = delta.compute(path)
    hashed = delta.Signature(BLOCK, size, quick.digests[:])
    data = bytearray(path.read_bytes())
    for offset, length in ((0, BLOCK), (3 * BLOCK, 4 * BLOCK),
                           (10 * BLOCK, size - 10 * BLOCK)):
        delta.record_zeros(quick, offset, length)
        delta.record(hashed, offset, bytes(length))
        data[offset:offset + length] = bytes(length)
    path.write_bytes(data)
    assert quick == hashed == delta.compute(path)
    with pytest.raises(delta.SignatureError, match='block boundary'):
        delta.record_zeros(quick, 5, BLOCK)
    with pytest.raises(delta.SignatureError, match='block boundary'):
        delta.record_zeros(quick, 0, BLOCK + 1)
