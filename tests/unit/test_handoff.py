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
            'm1', plan.servers[0], data, 'image.raw', len(IMAGE),
            hashlib.sha512(IMAGE).hexdigest(), 'snap1'))
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
