"""The handoff item: atomic writes, the marker, reading and validation.

Real files in a temporary directory; nothing is mocked.
"""

import hashlib
import json
import os

import pytest

from overcloud_migrate import handoff
from overcloud_migrate.plan import model
from tests.unit.plan import test_model

IMAGE = bytes(range(256)) * 4096 + b'tail'


def snapshot():
    return model.Image(id='snap1', name='om-web', disk_format='raw',
                       container_format='bare', size=len(IMAGE),
                       hash_algo='sha512',
                       hash_value=hashlib.sha512(IMAGE).hexdigest())


def write_item(root, name='m1-v1', image=IMAGE, plan=None, marker=True):
    """An item as `migrate --handoff` leaves it (local directory)."""
    plan = plan or handoff.server_plan(test_model.sample(), 'v1', snapshot())
    item = root / name
    item.mkdir()
    (item / 'image.raw').write_bytes(image)
    data = handoff.plan_bytes(plan)
    handoff.write_file(item / handoff.PLAN_FILE, data)
    if marker:
        handoff.write_file(item / handoff.MARKER, handoff.marker_bytes(
            'm1', plan.servers[0], data, handoff.file_entry(
                'image.raw', len(IMAGE), hashlib.sha512(IMAGE).hexdigest(),
                'snap1')))
    return item


ROOT = b'boot volume' + bytes(4096)
DATA = bytes(range(256)) * 64


def volume_plan():
    """A server booting from volume 'root' with volume 'data' attached,
    beside another server whose volume 'other' is not its own."""
    plan = test_model.sample()
    plan.volumes = [model.Volume(id='root', size=1, bootable=True),
                    model.Volume(id='data', size=1, volume_type='fast'),
                    model.Volume(id='other', size=1)]
    server = plan.servers[0]
    server.boot_source, server.image_id = 'volume', None
    server.volumes = [model.VolumeAttachment('root', '/dev/vda', 0),
                      model.VolumeAttachment('data', '/dev/vdb')]
    plan.ports.append(model.Port(id='p2', network_id='n1'))
    plan.servers.append(model.Server(
        id='v2', name='db', flavor_id='m1.tiny', port_ids=['p2'],
        volumes=[model.VolumeAttachment('other', '/dev/vdb')]))
    return plan


def write_volume_item(root, name='m1-v1', files=None):
    """An item of a server that boots from a volume: no image, a file per
    volume, a version 2 marker."""
    files = files or {'root': ROOT, 'data': DATA}
    item = root / name
    item.mkdir()
    entries = []
    for volume_id, data in files.items():
        file_name = handoff.volume_file(volume_id, 'qcow2')
        (item / file_name).write_bytes(data)
        entries.append(handoff.file_entry(
            file_name, len(data), hashlib.sha512(data).hexdigest(),
            volume_id, image_id='img-%s' % volume_id))
    plan = handoff.server_plan(volume_plan(), 'v1', None)
    data = handoff.plan_bytes(plan)
    handoff.write_file(item / handoff.PLAN_FILE, data)
    handoff.write_file(item / handoff.MARKER, handoff.marker_bytes(
        'm1', plan.servers[0], data, None, entries))
    return item


def test_atomic_write_leaves_only_the_final_file(tmp_path):
    handoff.write_file(tmp_path / 'a.json', b'one')
    handoff.write_file(tmp_path / 'a.json', b'two')
    assert os.listdir(tmp_path) == ['a.json']
    assert (tmp_path / 'a.json').read_bytes() == b'two'


def test_atomic_write_replaces_a_planted_link_instead_of_writing_through(
        tmp_path):
    outside = tmp_path / 'outside'
    outside.write_bytes(b'keep me')
    item = tmp_path / 'item'
    item.mkdir()
    os.symlink(outside, item / handoff.STATUS_FILE)
    handoff.write_status(str(tmp_path), 'item', {'state': 'done'})
    assert outside.read_bytes() == b'keep me'
    assert not os.path.islink(item / handoff.STATUS_FILE)
    assert json.loads((item / handoff.STATUS_FILE).read_text())['state'] \
        == 'done'


def test_server_plan_keeps_the_world_and_only_the_servers_own_parts():
    plan = test_model.sample()
    plan.ports.append(model.Port(id='p2', network_id='n1'))
    plan.servers.append(model.Server(id='v2', name='db', flavor_id='m1.tiny',
                                     port_ids=['p2']))
    plan.floating_ips = [model.FloatingIP('f1', '1.2.3.4', 'ext', 'p2')]
    part = handoff.server_plan(plan, 'v1', snapshot())
    assert [s.id for s in part.servers] == ['v1']
    assert [p.id for p in part.ports] == ['p1']
    assert part.floating_ips == []
    assert part.networks == plan.networks and part.subnets == plan.subnets
    assert [i.id for i in part.images] == ['snap1']
    assert len(plan.servers) == 2   # the whole plan is untouched


def test_a_complete_item_reads_back_with_its_plan_and_image(tmp_path):
    write_item(tmp_path)
    item = handoff.read_item(str(tmp_path), 'm1-v1')
    assert item.migration_id == 'm1'
    assert item.server.id == 'v1' and item.image.id == 'snap1'
    assert item.size == len(IMAGE)
    assert item.sha512 == hashlib.sha512(IMAGE).hexdigest()
    with item.open_image() as data:
        assert data.read() == IMAGE


def test_an_item_with_volumes_reads_back_each_volumes_file(tmp_path):
    item_dir = write_volume_item(tmp_path)
    marker = json.loads((item_dir / handoff.MARKER).read_text())
    assert marker['version'] == 2 and marker['image'] is None
    item = handoff.read_item(str(tmp_path), 'm1-v1')
    assert item.image is None and item.image_name is None
    assert [v.id for v in item.plan.volumes] == ['root', 'data']
    assert sorted(item.volumes) == ['data', 'root']
    assert item.volumes['data']['file'] == 'volume-data.qcow2'
    assert item.volumes['data']['sha512'] == hashlib.sha512(DATA).hexdigest()
    assert item.total_bytes == len(ROOT) + len(DATA)
    with item.open_volume('data') as data:
        assert data.read() == DATA


def test_an_item_without_volumes_keeps_marker_version_1(tmp_path):
    item = write_item(tmp_path)
    assert json.loads((item / handoff.MARKER).read_text())['version'] == 1


@pytest.mark.parametrize('damage,message', [
    (lambda i: (i / 'volume-data.qcow2').write_bytes(DATA[:10]),
     'volume-data.qcow2 has 10 bytes, the marker says %d' % len(DATA)),
    (lambda i: (i / 'volume-root.qcow2').unlink(),
     'volume-root.qcow2 is missing'),
    (lambda i: _edit_marker(i, lambda m: m['volumes'].pop()),
     'the plan gives the server the volumes data, root, the marker carries '
     'root'),
    (lambda i: _edit_marker(i, lambda m: m['volumes'][0].update(
        file='../volume-root.qcow2')), 'volumes[0].file'),
    (lambda i: _edit_marker(i, lambda m: m['volumes'][1].update(
        file='image.raw')), 'volumes[1].file'),
    (lambda i: _edit_marker(i, lambda m: m['volumes'][1].update(
        file='volume-root.qcow2')), 'a volume or file named twice'),
    (lambda i: _edit_marker(i, lambda m: m.update(version=1)),
     'the marker is invalid: image'),
    (lambda i: _edit_marker(i, lambda m: m['volumes'][0].update(
        image_id={'a': 1})), 'volumes[0].image_id'),
])
def test_damaged_volume_items_are_refused_with_the_reason(tmp_path, damage,
                                                          message):
    damage(write_volume_item(tmp_path))
    with pytest.raises(handoff.ItemError) as caught:
        handoff.read_item(str(tmp_path), 'm1-v1')
    assert message in str(caught.value)


def test_a_volume_booted_server_with_an_image_is_refused(tmp_path):
    item = write_volume_item(tmp_path)
    (item / 'image.raw').write_bytes(IMAGE)
    _edit_marker(item, lambda m: m.update(image=handoff.file_entry(
        'image.raw', len(IMAGE), hashlib.sha512(IMAGE).hexdigest(), 'x')))
    with pytest.raises(handoff.ItemError) as caught:
        handoff.read_item(str(tmp_path), 'm1-v1')
    assert 'the plan must hold exactly the image x' in str(caught.value)


def _edit_marker(item, change):
    marker = json.loads((item / handoff.MARKER).read_text())
    change(marker)
    (item / handoff.MARKER).write_text(json.dumps(marker))


def test_server_plan_carries_only_the_servers_own_volumes():
    part = handoff.server_plan(volume_plan(), 'v1', None)
    assert part.images == []
    assert [v.id for v in part.volumes] == ['root', 'data']
    assert part.volumes[1].volume_type == 'fast'


@pytest.mark.parametrize('volume_id', ['../x', 'a/b', ''])
def test_a_volume_id_that_cannot_name_a_file_is_refused(volume_id):
    with pytest.raises(handoff.ItemError):
        handoff.volume_file(volume_id, 'qcow2')


def test_no_marker_is_not_ready_not_an_error(tmp_path):
    write_item(tmp_path, marker=False)
    with pytest.raises(handoff.NotReady):
        handoff.read_item(str(tmp_path), 'm1-v1')


@pytest.mark.parametrize('damage,message', [
    (lambda i: (i / 'plan.json').write_bytes(
        (i / 'plan.json').read_bytes()[:100]), 'plan.json has 100 bytes'),
    (lambda i: (i / 'image.raw').write_bytes(IMAGE[:10]),
     'image.raw has 10 bytes'),
    (lambda i: (i / 'image.raw').unlink(), 'image.raw is missing'),
    (lambda i: (i / 'COMPLETE').write_text('{"version": 1'),
     'the marker is not JSON'),
    (lambda i: (i / 'COMPLETE').write_text(json.dumps(dict(
        json.loads((i / 'COMPLETE').read_text()),
        image={'file': '../../etc/passwd', 'size': 1, 'sha512': 'a' * 128,
               'id': 'x'}))), 'image.file'),
    (lambda i: (i / 'COMPLETE').write_text(json.dumps(dict(
        json.loads((i / 'COMPLETE').read_text()), version=9))), 'version 9'),
])
def test_damaged_items_are_refused_with_the_reason(tmp_path, damage,
                                                   message):
    damage(write_item(tmp_path))
    with pytest.raises(handoff.ItemError) as caught:
        handoff.read_item(str(tmp_path), 'm1-v1')
    assert not isinstance(caught.value, handoff.NotReady)
    assert message in str(caught.value)


def test_a_plan_that_fails_validation_is_refused(tmp_path):
    item = write_item(tmp_path)
    plan = json.loads((item / 'plan.json').read_text())
    plan['servers'][0]['port_ids'] = ['p9']
    data = json.dumps(plan).encode()
    (item / 'plan.json').write_bytes(data)
    marker = json.loads((item / 'COMPLETE').read_text())
    marker['plan'].update(size=len(data),
                          sha512=hashlib.sha512(data).hexdigest())
    (item / 'COMPLETE').write_text(json.dumps(marker))
    with pytest.raises(handoff.ItemError) as caught:
        handoff.read_item(str(tmp_path), 'm1-v1')
    assert 'plan.servers[0].port_ids: port p9 is not in the plan' in \
        str(caught.value)


def test_symbolic_links_are_never_followed(tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    write_item(outside)
    root = tmp_path / 'root'
    root.mkdir()
    os.symlink(outside / 'm1-v1', root / 'm1-v1')
    with pytest.raises(handoff.ItemError) as caught:
        handoff.read_item(str(root), 'm1-v1')
    assert 'symbolic link' in str(caught.value)
    # a link to a file outside, in place of the image
    item = write_item(root, name='m1-v2')
    (item / 'image.raw').unlink()
    os.symlink(outside / 'm1-v1' / 'image.raw', item / 'image.raw')
    with pytest.raises(handoff.ItemError) as caught:
        handoff.read_item(str(root), 'm1-v2')
    assert 'symbolic link' in str(caught.value)


@pytest.mark.parametrize('name', ['..', '../x', 'a/b', '.hidden', '', 'a..b',
                                  'x' * 300])
def test_item_names_are_plain(tmp_path, name):
    assert not handoff.valid_name(name)
    with pytest.raises(handoff.ItemError):
        handoff.read_item(str(tmp_path), name)


def test_status_and_move_to_done_or_failed(tmp_path):
    write_item(tmp_path)
    handoff.write_status(str(tmp_path), 'm1-v1', {'state': 'processing'})
    assert handoff.read_status(str(tmp_path), 'm1-v1')['state'] == \
        'processing'
    assert handoff.move(str(tmp_path), 'm1-v1', handoff.DONE) == 'm1-v1'
    assert handoff.list_items(str(tmp_path)) == []
    assert handoff.list_items(str(tmp_path), handoff.DONE) == ['m1-v1']
    # the same item handed off again and done again does not overwrite
    write_item(tmp_path)
    assert handoff.move(str(tmp_path), 'm1-v1', handoff.DONE) == 'm1-v1.2'
    with pytest.raises(handoff.ItemError):
        handoff.move(str(tmp_path), 'm1-v1', '../elsewhere')
