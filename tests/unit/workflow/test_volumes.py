"""The volume steps of a server's flow: which tasks, what they pass on,
the block device mapping the copy boots with, and the client-side marker
filters (the SDK drops query filters it does not know)."""

import types

from openstack.block_storage.v3 import snapshot as sdk_snapshot
from openstack.block_storage.v3 import volume as sdk_volume
from openstack.image.v2 import image as sdk_image

from overcloud_migrate.plan import model
from overcloud_migrate.workflow import engine
from overcloud_migrate.workflow import tasks
from overcloud_migrate.workflow import volumes


def _plan(boot_source):
    attachments = [{'volume_id': 'data', 'device': '/dev/vdb'},
                   {'volume_id': 'log', 'device': '/dev/vdc',
                    'delete_on_termination': True}]
    if boot_source == 'volume':
        attachments.insert(0, {'volume_id': 'root', 'device': '/dev/vda',
                               'boot_index': 0,
                               'delete_on_termination': True})
    return model.Plan.from_dict({
        'mappings': {'volume_types': {'fast': 'gold'}},
        'flavors': [{'id': 'f', 'name': 'f', 'vcpus': 1, 'ram': 64,
                     'disk': 1}],
        'volumes': [{'id': 'root', 'size': 1, 'bootable': True},
                    {'id': 'data', 'size': 2, 'volume_type': 'standard'},
                    {'id': 'log', 'size': 3, 'volume_type': 'fast'}],
        'servers': [{'id': 's1', 'name': 'db', 'flavor_id': 'f',
                     'boot_source': boot_source,
                     'image_id': None if boot_source == 'volume' else 'img',
                     'volumes': attachments}],
    })


def _ctx(plan):
    return tasks.ServerContext(
        migration_id='m', server=plan.servers[0], plan=plan, source=None,
        dest=None, journal=None, transport=None, ids={})


def test_a_volume_backed_server_has_no_snapshot_and_five_steps_a_volume():
    flow = engine.server_flow(_ctx(_plan('volume')))
    names = [t.name for t in flow]

    assert 'snapshot:s1' not in names and 'transfer:s1' not in names
    assert names[0] == 'stop:s1'
    assert names[1:6] == ['%s:s1:root' % p for p in volumes.PHASES]
    assert names[-4:] == ['boot:s1', 'verify:s1', 'verify-volumes:s1',
                          'volume-cleanup:s1']
    boot = next(t for t in flow if t.name == 'boot:s1')
    assert set(boot.requires) == {'volume_dest:root', 'volume_dest:data',
                                  'volume_dest:log'}


def test_an_image_booted_server_keeps_its_image_path():
    flow = engine.server_flow(_ctx(_plan('image')))
    names = [t.name for t in flow]

    assert names[:3] == ['stop:s1', 'snapshot:s1', 'transfer:s1']
    boot = next(t for t in flow if t.name == 'boot:s1')
    assert set(boot.requires) == {'dest_image_id', 'volume_dest:data',
                                  'volume_dest:log'}


def test_each_step_hands_the_next_its_result_by_volume():
    flow = engine.server_flow(_ctx(_plan('volume')))
    by_name = {t.name: t for t in flow}

    assert by_name['volume-clone:s1:data'].requires == {
        'volume_snapshot:data'}
    assert by_name['volume-create:s1:log'].provides == {'volume_dest:log'}


def test_the_block_device_mapping_keeps_order_devices_and_deletion():
    ctx = _ctx(_plan('volume'))
    results = {'volume_dest:root': 'R', 'volume_dest:data': 'D',
               'volume_dest:log': 'L'}

    mapping = volumes.block_device_mapping(ctx, results)

    assert [(m['uuid'], m['boot_index'], m.get('device_name'),
             m['delete_on_termination']) for m in mapping] == [
        ('R', 0, '/dev/vda', True), ('D', -1, '/dev/vdb', False),
        ('L', -1, '/dev/vdc', True)]
    assert {m['source_type'] for m in mapping} == {'volume'}


def test_an_image_booted_server_boots_its_image_with_its_volumes():
    ctx = _ctx(_plan('image'))
    mapping = volumes.block_device_mapping(
        ctx, {'volume_dest:data': 'D', 'volume_dest:log': 'L'}, 'IMG')

    assert mapping[0] == {'boot_index': 0, 'uuid': 'IMG',
                          'source_type': 'image',
                          'destination_type': 'local',
                          'delete_on_termination': True}
    assert [m['uuid'] for m in mapping[1:]] == ['D', 'L']


def test_volume_types_and_zones_are_mapped():
    plan = _plan('volume')
    plan.mappings.availability_zones = {'az1': 'nova'}
    log = plan.by_id('volumes', 'log')
    log.availability_zone = 'az1'

    assert volumes.dest_volume_type(plan, log) == 'gold'
    assert volumes.dest_volume_type(plan, plan.by_id('volumes', 'data')) == \
        'standard'
    assert volumes.dest_volume_type(plan, plan.by_id('volumes',
                                                     'root')) is None
    assert volumes.dest_zone(plan, log) == 'nova'


class _Storage:
    """A Cinder that ignores every query filter, as the SDK may."""

    def __init__(self, vols, snaps):
        self._vols, self._snaps = vols, snaps

    def volumes(self, **query):
        return list(self._vols)

    def snapshots(self, **query):
        return list(self._snaps)


def test_markers_are_checked_on_the_client_before_anything_is_deleted():
    mine = sdk_volume.Volume(id='a', metadata=volumes.markers(
        'm', 'v1', volumes.ROLE_TEMPORARY))
    other_run = sdk_volume.Volume(id='b', metadata=volumes.markers(
        'other', 'v1', volumes.ROLE_TEMPORARY))
    copy = sdk_volume.Volume(id='c', metadata=volumes.markers(
        'm', 'v1', volumes.ROLE_COPY))
    user = sdk_volume.Volume(id='d', metadata={'tier': 'db'})
    snap = sdk_snapshot.Snapshot(id='s', metadata=volumes.markers(
        'm', 'v1', volumes.ROLE_SNAPSHOT))
    conn = types.SimpleNamespace(block_storage=_Storage(
        [mine, other_run, copy, user],
        [snap, sdk_snapshot.Snapshot(id='t', metadata={})]))

    found = volumes.marked_volumes(conn, 'm', **{
        volumes.PROP_ROLE: volumes.ROLE_TEMPORARY})

    assert [v.id for v in found] == ['a']
    assert [s.id for s in volumes.marked_snapshots(conn, 'm')] == ['s']


def test_source_images_are_found_by_name_or_properties_of_this_run_only():
    class _Images:
        def images(self, owner=None):
            return [
                sdk_image.Image(id='1', name=volumes.image_name('m', 'v1')),
                sdk_image.Image(id='2', name='renamed', properties={
                    'om_migration': 'm', 'om_source_volume': 'v2'}),
                sdk_image.Image(id='3', name=volumes.image_name('n', 'v1')),
                sdk_image.Image(id='4', name='om-db-m', properties={
                    'om_migration': 'm', 'om_source_server': 's1'}),
            ]
    conn = types.SimpleNamespace(image=_Images(), current_project_id='p')

    assert [i.id for i in volumes.source_images(conn, 'm')] == ['1', '2']
    assert [i.id for i in volumes.source_images(conn, 'm', 'v1')] == ['1']
