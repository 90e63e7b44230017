"""A warm migration whose source server changes between rounds, on devcloud.

Each case migrates one volume-backed server of its own (a 1 GiB root
volume, nothing else) from devcloud-a to devcloud-b with ``--warm`` through
two DTN services (tests/functional/warm.py), then changes it at the source
the way an operator or its owner might between two rounds: rebuilt,
deleted, resized (and the resize confirmed).  The next ``migration sync``
and ``migration cutover`` must refuse with a sentence that names the
server and the change, exit non-zero without a traceback and leave the
source as it is; ``migration rollback`` must then leave the destination as
it was before the migration.
"""

import contextlib

import openstack
from openstack import exceptions as sdk_exc
import pytest

from overcloud_devcloud import bootstrap
from overcloud_devcloud import scenario
from tests.functional import helpers
from tests.functional import warm

PREFIX = 'ws'
BED_ACCESS = 'shared'
WAIT = 300
CASES = ('rebuilt', 'deleted', 'resized')
CIDR = '10.31.0.0/24'
FLAVOR = 'm1.tiny'
OTHER_FLAVOR = 'm1.small'

dtns = warm.dtns
journal = warm.journal
run = warm.run


def _named(items):
    return [i for i in items if (i.name or '').startswith(PREFIX + '-')]


def _clean(conn):
    """Everything named PREFIX-... (servers, volumes, ports, network,
    security group) and the images a migration of them left."""
    compute, net, storage = conn.compute, conn.network, conn.block_storage
    servers = _named(compute.servers())
    for server in servers:
        compute.delete_server(server, ignore_missing=True)
    for server in servers:
        compute.wait_for_delete(server, wait=WAIT, interval=helpers.POLL)
    for volume in _named(storage.volumes()):
        # a deleted server's root volume may be going already
        with contextlib.suppress(sdk_exc.NotFoundException):
            helpers.delete_volume(conn, volume, WAIT)
    for port in _named(net.ports()):
        net.delete_port(port, ignore_missing=True)
    for network in _named(net.networks()):
        for port in net.ports(network_id=network.id):
            net.delete_port(port, ignore_missing=True)
        net.delete_network(network, ignore_missing=True)
    for group in _named(net.security_groups()):
        net.delete_security_group(group, ignore_missing=True)
    for image in conn.image.images(owner=conn.current_project_id):
        if (image.name or '').startswith('om-%s-' % PREFIX):
            conn.image.delete_image(image, ignore_missing=True)


@pytest.fixture(scope='module')
def clouds(devcloud):
    """(source, destination, {case: server}): a network, a security group
    and one volume-backed server per case in devcloud-a, ACTIVE; nothing
    of them in devcloud-b."""
    src = openstack.connect(cloud='devcloud-a')
    dst = openstack.connect(cloud='devcloud-b')
    try:
        for conn in (src, dst):
            _clean(conn)
        net = src.network
        network = net.create_network(name='%s-net' % PREFIX)
        subnet = net.create_subnet(network_id=network.id,
                                   name='%s-subnet' % PREFIX, ip_version=4,
                                   cidr=CIDR)
        group = net.create_security_group(name='%s-sg' % PREFIX,
                                          description='warm source changes')
        image = src.image.find_image(bootstrap.IMAGE_NAME,
                                     ignore_missing=False)
        flavor = src.compute.find_flavor(FLAVOR, ignore_missing=False)
        roots = {case: src.block_storage.create_volume(
            name='%s-%s-root' % (PREFIX, case), size=1, image_id=image.id)
            for case in CASES}
        servers = {}
        for number, case in enumerate(CASES):
            root = src.block_storage.wait_for_status(
                roots[case], 'available', failures=['error'], wait=WAIT,
                interval=helpers.POLL)
            port = net.create_port(
                network_id=network.id, name='%s-%s-port' % (PREFIX, case),
                fixed_ips=[{'subnet_id': subnet.id,
                            'ip_address': CIDR.replace('0/24',
                                                       str(10 + number))}],
                security_group_ids=[group.id])
            servers[case] = src.compute.create_server(
                name='%s-%s' % (PREFIX, case), flavor_id=flavor.id,
                networks=[{'port': port.id}],
                block_device_mapping=[{
                    'boot_index': 0, 'uuid': root.id,
                    'source_type': 'volume', 'destination_type': 'volume',
                    'delete_on_termination': True}])
        for case in CASES:
            servers[case] = src.compute.wait_for_server(
                servers[case], wait=WAIT, interval=scenario.POLL)
        yield src, dst, servers
    finally:
        for conn in (dst, src):
            _clean(conn)
        src.close()
        dst.close()


def dest_view(dst, migration=None):
    """What a migration of this module's servers may leave at the
    destination: by ID, the resources named after PREFIX (volume copies
    keep their source's name) and the volumes and images that carry the
    mark of ``migration``."""
    net = dst.network
    marked = warm.copies(dst, migration) if migration else {}
    return {
        'servers': sorted(s.id for s in _named(dst.compute.servers())),
        'networks': sorted(n.id for n in _named(net.networks())),
        'subnets': sorted(s.id for s in _named(net.subnets())),
        'ports': sorted(p.id for p in _named(net.ports())),
        'groups': sorted(g.id for g in _named(net.security_groups())),
        'volumes': sorted({v.id for v in _named(dst.block_storage.volumes())}
                          | {v.id for found in marked.values()
                             for v in found}),
        'images': sorted(i.id for i in dst.image.images(
            owner=dst.current_project_id)
            if (migration and (i.properties or {}).get(warm.MARK)
                == migration) or (i.name or '').startswith('om-%s-' % PREFIX)),
    }


def first_round(clouds, dtns, journal, case):
    """The first round of ``case``'s server, synced: (migration ID, the
    destination before it)."""
    src, dst, servers = clouds
    a, b = dtns
    server = servers[case]
    before = dest_view(dst)
    code, out, err = warm.migrate_warm(journal, a, b, server.name)
    assert code == 0, err[-3000:]
    assert warm.rows(out, 'server')[server.name]['Status'] == 'synced'
    migration = warm.latest(journal)
    made = dest_view(dst, migration)
    # the round built the network world and a copy of the root volume
    assert len(made['ports']) == len(before['ports']) + 1, made
    assert len(made['volumes']) == len(before['volumes']) + 1, made
    assert warm.status(src, server.id) == 'ACTIVE'
    return migration, before


def refused(journal, step, migration, server, change):
    """``migration STEP`` fails on ``server`` with the sentence naming
    ``change``; returns its stderr."""
    code, out, err = run(journal, 'migration', step, migration, '-f', 'json')
    assert code != 0, (step, out)
    assert 'Traceback' not in err, err[-3000:]
    sentence = "Server '%s' (%s) %s" % (server.name, server.id, change)
    assert sentence in err, (step, err[-3000:])
    assert 'rollback %s' % migration in err, err[-3000:]
    status = warm.rows(out, 'server')[server.name]['Status']
    assert sentence in status, status
    return err


def rolled_back(journal, dst, migration, before):
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err[-3000:]
    assert dest_view(dst, migration) == before
    assert warm.show(journal, migration)['state'] == 'rolled-back'


def test_a_rebuilt_source_server_stops_the_migration(clouds, dtns, journal):
    """Rebuilt on its own image (all a volume-backed server allows before
    compute API 2.93): its launch time changes; neither a round nor the
    cut-over runs, the source is not stopped."""
    src, dst, servers = clouds
    server = servers['rebuilt']
    migration, before = first_round(clouds, dtns, journal, 'rebuilt')
    launched = src.compute.get_server(server.id).launched_at
    image = src.image.find_image(bootstrap.IMAGE_NAME, ignore_missing=False)
    src.compute.rebuild_server(server, image=image.id)
    rebuilt = src.compute.wait_for_server(
        src.compute.get_server(server.id), wait=WAIT, interval=helpers.POLL)
    assert rebuilt.launched_at != launched

    refused(journal, 'sync', migration, server,
            'was rebuilt (launched at %s, now at %s) since warm migration '
            '%s began' % (launched, rebuilt.launched_at, migration))
    refused(journal, 'cutover', migration, server, 'was rebuilt')
    assert warm.status(src, server.id) == 'ACTIVE'
    assert not [s for s in _named(dst.compute.servers())]
    rolled_back(journal, dst, migration, before)
    assert warm.status(src, server.id) == 'ACTIVE'


def test_a_deleted_source_server_stops_the_migration(clouds, dtns, journal):
    src, dst, servers = clouds
    server = servers['deleted']
    migration, before = first_round(clouds, dtns, journal, 'deleted')
    src.compute.delete_server(server)
    src.compute.wait_for_delete(server, wait=WAIT, interval=helpers.POLL)

    refused(journal, 'sync', migration, server,
            'was deleted at the source during warm migration %s'
            % migration)
    refused(journal, 'cutover', migration, server, 'was deleted')
    rolled_back(journal, dst, migration, before)


def test_a_resized_source_server_stops_the_migration(clouds, dtns, journal):
    """Resized to another flavor and the resize confirmed."""
    src, dst, servers = clouds
    server = servers['resized']
    migration, before = first_round(clouds, dtns, journal, 'resized')
    other = src.compute.find_flavor(OTHER_FLAVOR, ignore_missing=False)
    src.compute.resize_server(server, other.id)
    src.compute.wait_for_server(server, status='VERIFY_RESIZE', wait=WAIT,
                                interval=helpers.POLL)
    src.compute.confirm_server_resize(server)
    resized = src.compute.wait_for_server(server, wait=WAIT,
                                          interval=helpers.POLL)
    assert resized.flavor.name == OTHER_FLAVOR

    refused(journal, 'sync', migration, server,
            'was resized (flavor %s, now %s) since warm migration %s began'
            % (FLAVOR, OTHER_FLAVOR, migration))
    refused(journal, 'cutover', migration, server, 'was resized')
    assert warm.status(src, server.id) == 'ACTIVE'
    rolled_back(journal, dst, migration, before)
    assert warm.status(src, server.id) == 'ACTIVE'
