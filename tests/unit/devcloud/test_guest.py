"""``overcloud-devcloud guest write``: seeded in-place block changes."""

import os

import pytest

from overcloud_devcloud import guest

BLOCK = 4096


def _disk(tmp_path, blocks=100, tail=0):
    path = tmp_path / 'server.disk'
    path.write_bytes(b'\0' * (blocks * BLOCK + tail))
    return path


def _changed_offsets(before, after):
    return sorted(off for off in range(0, len(before) - len(before) % BLOCK,
                                       BLOCK)
                  if before[off:off + BLOCK] != after[off:off + BLOCK])


def test_exactly_the_reported_blocks_change_in_place(tmp_path):
    disk = _disk(tmp_path, tail=100)
    before = disk.read_bytes()
    inode = os.stat(disk).st_ino

    report = guest.write(disk, 10, seed='s1')

    after = disk.read_bytes()
    assert len(after) == len(before) and os.stat(disk).st_ino == inode
    assert report.blocks_changed == 10 and report.bytes_changed == 10 * BLOCK
    assert _changed_offsets(before, after) == report.offsets
    assert after[-100:] == before[-100:]    # a partial tail is never picked


def test_the_same_seed_writes_the_same_bytes(tmp_path):
    one, two = tmp_path / 'a', tmp_path / 'b'
    one.mkdir()
    two.mkdir()
    first, second = _disk(one), _disk(two)

    guest.write(first, 5, seed=7)
    guest.write(second, 5, seed=7)
    other = guest.pick_blocks(100 * BLOCK, 5, seed=8)

    assert first.read_bytes() == second.read_bytes()
    assert other != guest.pick_blocks(100 * BLOCK, 5, seed=7)


def test_a_small_percentage_changes_at_least_one_block():
    assert len(guest.pick_blocks(100 * BLOCK, 0.01, seed=1)) == 1
    assert guest.pick_blocks(100 * BLOCK, 0, seed=1) == []
    assert len(guest.pick_blocks(100 * BLOCK, 100, seed=1)) == 100


@pytest.mark.parametrize('args,message', [
    ((100 * BLOCK, 101, 1), 'between 0 and 100'),
    ((100 * BLOCK, -1, 1), 'between 0 and 100'),
    ((BLOCK - 1, 50, 1), 'less than one block'),
    ((100 * BLOCK, 5, 1, 0), 'must be positive'),
])
def test_bad_requests_are_refused(args, message):
    with pytest.raises(guest.GuestError, match=message):
        guest.pick_blocks(*args)


def test_a_missing_disk_or_a_symlink_is_refused(tmp_path):
    target = _disk(tmp_path)
    link = tmp_path / 'link.disk'
    link.symlink_to(target)

    with pytest.raises(guest.GuestError, match='Cannot open the disk'):
        guest.write(tmp_path / 'nope.disk', 5, seed=1)
    with pytest.raises(guest.GuestError, match='Cannot open the disk'):
        guest.write(link, 5, seed=1)


def _record(tmp_path, volumes):
    import json
    (tmp_path / 'srv.json').write_text(json.dumps(
        {'name': 'x', 'state': 1, 'volumes': volumes}))


def test_the_disk_of_a_server_follows_the_drivers_record(tmp_path):
    _record(tmp_path, {
        'root-vol': {'device_path': '/share/volume-root', 'root': True,
                     'format': 'raw', 'mountpoint': '/dev/vda'},
        'data-vol': {'device_path': '/share/volume-data', 'root': False,
                     'format': 'raw', 'mountpoint': '/dev/vdb'}})

    assert guest.disk_of(tmp_path, 'srv') == '/share/volume-root'
    assert guest.disk_of(tmp_path, 'srv', 'data-vol') == '/share/volume-data'
    with pytest.raises(guest.GuestError, match='not attached.*data-vol'):
        guest.disk_of(tmp_path, 'srv', 'other')


def test_an_image_booted_server_writes_its_own_disk_file(tmp_path):
    _record(tmp_path, {})
    assert guest.disk_of(tmp_path, 'srv') == str(tmp_path / 'srv.disk')
    with pytest.raises(guest.GuestError, match='no readable record'):
        guest.disk_of(tmp_path, 'missing')


def test_a_qcow2_overlay_is_not_written(tmp_path):
    _record(tmp_path, {'v': {'device_path': '/share/volume-v.snap',
                             'root': True, 'format': 'qcow2'}})
    with pytest.raises(guest.GuestError, match='qcow2 file now'):
        guest.disk_of(tmp_path, 'srv')
