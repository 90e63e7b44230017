"""Volumes in the plan: what the inventory reads, what the model accepts,
what the prechecks refuse.

The source is a small in-memory fake of the three calls the inventory makes
for volumes (Nova's volume attachments, Cinder's volume show), built from
openstacksdk's own resource classes so a renamed attribute fails here.
"""

import types

from openstack.block_storage.v3 import volume as sdk_volume
from openstack.compute.v2 import server as sdk_server
from openstack.compute.v2 import volume_attachment as sdk_attachment
from openstack import exceptions as sdk_exc
import pytest

from overcloud_migrate.plan import inventory
from overcloud_migrate.plan import model
from overcloud_migrate.plan import prechecks


class FakeCompute:
    def __init__(self, attachments):
        self._attachments = attachments

    def volume_attachments(self, server):
        return list(self._attachments.get(server.id, []))


class FakeBlockStorage:
    def __init__(self, volumes):
        self._volumes = {v.id: v for v in volumes}

    def get_volume(self, volume_id):
        try:
            return self._volumes[volume_id]
        except KeyError:
            raise sdk_exc.NotFoundException('no volume %s' % volume_id)


def _volume(vid, size=1, bootable='false', **extra):
    return sdk_volume.Volume(id=vid, name='vol-' + vid, size=size,
                             bootable=bootable, volume_type='standard',
                             status='in-use', **extra)


def _attach(server_id, volume_id, device, delete=False):
    return sdk_attachment.VolumeAttachment(
        server_id=server_id, volume_id=volume_id, device=device,
        delete_on_termination=delete)


def _reader(attachments, volumes):
    conn = types.SimpleNamespace(compute=FakeCompute(attachments),
                                 block_storage=FakeBlockStorage(volumes))
    plan = model.Plan()
    return inventory._Reader(conn, plan, 'project'), plan


def test_boot_volume_is_the_root_device_and_data_volumes_keep_their_order():
    server = sdk_server.Server(id='s1', name='db', image={},
                               root_device_name='/dev/vda')
    reader, plan = _reader(
        {'s1': [_attach('s1', 'data2', '/dev/vdc'),
                _attach('s1', 'root', '/dev/vda', delete=True),
                _attach('s1', 'data1', '/dev/vdb')]},
        [_volume('root', 10, bootable='true',
                 volume_image_metadata={'os_distro': 'debian'}),
         _volume('data1', 2), _volume('data2', 3)])

    attachments = reader._add_volumes(server, boot_from_volume=True)

    assert [(a.volume_id, a.device, a.boot_index, a.delete_on_termination)
            for a in attachments] == [
        ('root', '/dev/vda', 0, True),
        ('data1', '/dev/vdb', None, False),
        ('data2', '/dev/vdc', None, False)]
    root = plan.by_id('volumes', 'root')
    assert root.bootable is True and root.size == 10
    assert root.image_metadata == {'os_distro': 'debian'}
    assert plan.by_id('volumes', 'data1').bootable is False


def test_image_booted_server_has_no_boot_volume():
    server = sdk_server.Server(id='s1', name='web', image={'id': 'img'})
    reader, _plan = _reader({'s1': [_attach('s1', 'd', '/dev/vdb')]},
                            [_volume('d', bootable='true')])

    attachments = reader._add_volumes(server, boot_from_volume=False)

    assert [a.boot_index for a in attachments] == [None]


def test_without_a_root_device_name_the_first_bootable_volume_boots():
    server = sdk_server.Server(id='s1', name='db', image={})
    reader, _plan = _reader(
        {'s1': [_attach('s1', 'data', '/dev/vda'),
                _attach('s1', 'root', '/dev/vdb')]},
        [_volume('data'), _volume('root', bootable='true')])

    attachments = reader._add_volumes(server, boot_from_volume=True)

    assert {a.volume_id: a.boot_index for a in attachments} == {
        'data': None, 'root': 0}


def test_device_names_sort_as_the_guest_sees_them():
    assert sorted(['/dev/vdaa', '/dev/vdb', '/dev/vda', None],
                  key=inventory._device_order) == [
        None, '/dev/vda', '/dev/vdb', '/dev/vdaa']


@pytest.mark.parametrize('extra,reason', [
    ({'multiattach': True}, 'is multi-attach'),
    ({'encrypted': True}, 'is encrypted'),
])
def test_multiattach_and_encrypted_volumes_are_refused_by_name(extra, reason):
    server = sdk_server.Server(id='s1', name='db', image={'id': 'i'})
    reader, plan = _reader({'s1': [_attach('s1', 'v', '/dev/vdb')]},
                           [_volume('v', **extra)])

    with pytest.raises(inventory.InventoryError) as err:
        reader._add_volumes(server, boot_from_volume=False)

    assert "Volume 'vol-v' (v) of server 'db' %s" % reason in str(err.value)
    assert plan.volumes == []


def test_an_unreadable_volume_names_the_server():
    server = sdk_server.Server(id='s1', name='db', image={'id': 'i'})
    reader, _plan = _reader({'s1': [_attach('s1', 'gone', '/dev/vdb')]}, [])

    with pytest.raises(inventory.InventoryError,
                       match="Volume gone attached to server 'db'"):
        reader._add_volumes(server, boot_from_volume=False)


def _plan(boot_source='volume', attachments=None, volumes=None):
    data = {
        'flavors': [{'id': 'f', 'name': 'f', 'vcpus': 1, 'ram': 64,
                     'disk': 1}],
        'volumes': volumes if volumes is not None else [
            {'id': 'root', 'size': 4, 'bootable': True}],
        'servers': [{'id': 's1', 'name': 'db', 'flavor_id': 'f',
                     'boot_source': boot_source,
                     'volumes': attachments if attachments is not None else [
                         {'volume_id': 'root', 'device': '/dev/vda',
                          'boot_index': 0}]}],
    }
    return data


def test_plan_with_volumes_round_trips():
    plan = model.Plan.from_dict(_plan())
    again = model.Plan.from_dict(plan.to_dict())

    assert again.servers[0].volumes == plan.servers[0].volumes
    assert again.volumes_of(again.servers[0])[0].size == 4


@pytest.mark.parametrize('data,message', [
    (_plan(attachments=[{'volume_id': 'nope', 'boot_index': 0}]),
     r'plan.servers\[0\].volumes\[0\].volume_id: volume nope is not in'),
    (_plan(attachments=[{'volume_id': 'root', 'boot_index': 1}]),
     r'volumes\[0\].boot_index: 0 \(the boot volume\) or null'),
    (_plan(attachments=[]),
     "boot_source 'volume' needs a volume with boot_index 0"),
    (_plan(boot_source='image'),
     "boot_source 'image' cannot have a volume with boot_index 0"),
    (_plan(volumes=[{'id': 'root', 'size': 4}, {'id': 'b', 'size': 1}],
           attachments=[{'volume_id': 'root', 'boot_index': 0},
                        {'volume_id': 'b', 'boot_index': 0}]),
     'more than one volume has boot_index 0'),
])
def test_bad_volume_references_are_named_by_path(data, message):
    with pytest.raises(model.PlanError, match=message):
        model.Plan.from_dict(data)


def test_handoff_prechecks_let_volumes_through():
    """The handoff item carries volumes now: its server checks (no
    destination) find nothing to refuse in them."""
    data = _plan(volumes=[{'id': 'root', 'size': 4, 'name': 'db-root'},
                          {'id': 'data', 'size': 2, 'name': 'db-data'}],
                 attachments=[{'volume_id': 'root', 'boot_index': 0},
                              {'volume_id': 'data'}])
    plan = model.Plan.from_dict(data)
    checks = prechecks.Prechecks.__new__(prechecks.Prechecks)
    checks.plan, checks.source, checks.dest, checks.problems = (
        plan, None, None, [])

    checks.servers()

    assert checks.problems == []


def test_the_root_device_name_wins_over_a_bootable_first_volume():
    server = sdk_server.Server(id='s1', name='db', image={},
                               root_device_name='/dev/vdb')
    reader, _plan = _reader(
        {'s1': [_attach('s1', 'other', '/dev/vda'),
                _attach('s1', 'root', '/dev/vdb')]},
        [_volume('other', bootable='true'), _volume('root', bootable='true')])

    attachments = reader._add_volumes(server, boot_from_volume=True)

    assert {a.volume_id: a.boot_index for a in attachments} == {
        'other': None, 'root': 0}
