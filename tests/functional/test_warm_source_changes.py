"""A warm migration whose source servers change between rounds, on devcloud.

One volume-backed server per case (a 1 GiB root volume, nothing else)
moves from devcloud-a to devcloud-b in one warm migration through two DTN
services (tests/functional/warm.py).  After the first round each server is
changed at the source the way its owner might between two rounds: rebuilt,
deleted, resized (the resize confirmed).  The next ``migration sync`` and
``migration cutover`` must refuse, naming each server and its change, exit
non-zero without a traceback and stop no source server; ``migration
rollback`` must then leave the destination as it was before the migration.

One migration for the three cases: every CLI call costs seconds and the
suite has a time budget.  That a round lets an unchanged server through is
the first round's own check (and unit-tested in
tests/unit/workflow/test_warm.py).
"""

import json
import re
import time

import openstack
from openstack import exceptions as sdk_exc
import pytest

from overcloud_devcloud import bootstrap
from overcloud_devcloud import scenario
from tests.functional import helpers
from tests.functional import warm

#: about how long this module takes on CI, in seconds (tests/conftest.py
#: hands the long ones out first)
SECONDS = 100
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
        _drop_volume(conn, volume)
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


def _drop_volume(conn, volume):
    """Delete a volume once Nova is done with it: a deleted server's root
    volume is detached, then deleted by Nova itself
    (delete_on_termination), which a delete of ours may race."""
    storage = conn.block_storage
    deadline = time.monotonic() + WAIT
    while True:
        try:
            volume = storage.get_volume(volume.id)
            if volume.status == 'deleting':
                storage.wait_for_delete(volume, wait=WAIT,
                                        interval=helpers.POLL)
                return
            if volume.status in ('available', 'error') or (
                    volume.status == 'in-use' and not volume.attachments):
                helpers.delete_volume(conn, volume, WAIT)
                return
        except sdk_exc.NotFoundException:
            return
        except sdk_exc.BadRequestException:
            pass    # Nova took it meanwhile: look again
        if time.monotonic() > deadline:
            raise AssertionError('volume %s stays %s' % (volume.id,
                                                         volume.status))
        time.sleep(helpers.POLL)


@pytest.fixture(scope='module')
def project(devcloud):
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


def refused(journal, step, migration, servers, changes):
    """``migration STEP`` fails, its stderr and each server's report row
    naming the server and its change ({case: sentence fragment})."""
    code, out, err = run(journal, 'migration', step, migration, '-f', 'json')
    assert code != 0, (step, out)
    assert 'Traceback' not in err, err[-3000:]
    assert '%d of %d servers failed' % (len(changes), len(servers)) in err, \
        err[-3000:]
    report = warm.rows(out, 'server')
    for case, change in changes.items():
        server = servers[case]
        sentence = "Server '%s' (%s) %s" % (server.name, server.id, change)
        assert '%s failed: %s' % (server.name, sentence) in err, \
            (step, case, err[-3000:])
        assert sentence in report[server.name]['Status'], (step, case)
    assert err.count('`openstack overcloud migration rollback %s` deletes '
                     'what it made at the destination' % migration) == \
        len(changes), err[-3000:]


def test_rebuilt_deleted_or_resized_sources_stop_the_migration(
        project, dtns, journal):
    src, dst, servers = project
    a, b = dtns
    before = dest_view(dst)
    code, out, err = warm.migrate_warm(
        journal, a, b, [servers[case].name for case in CASES])
    assert code == 0, err[-3000:]
    migration = re.search(r'Migration (\S+) recorded in the journal',
                          err).group(1)
    assert {name: row['Status'] for name, row in
            warm.rows(out, 'server').items()} == {
        servers[case].name: 'synced' for case in CASES}
    made = dest_view(dst, migration)
    # the round built the network world and a copy of each root volume
    for key in ('networks', 'subnets', 'groups'):
        assert len(made[key]) == len(before[key]) + 1, (key, made)
    for key in ('ports', 'volumes'):
        assert len(made[key]) == len(before[key]) + len(CASES), (key, made)

    # The sources change: all three at once, then each is waited for.
    compute = src.compute
    launched = compute.get_server(servers['rebuilt'].id).launched_at
    image = src.image.find_image(bootstrap.IMAGE_NAME, ignore_missing=False)
    # on its own image: openstacksdk asks compute API >= 2.93, so Nova has
    # Cinder reimage the root volume (devcloud's logs: volume-reimaged)
    compute.rebuild_server(servers['rebuilt'], image=image.id)
    compute.delete_server(servers['deleted'])
    other = compute.find_flavor(OTHER_FLAVOR, ignore_missing=False)
    compute.resize_server(servers['resized'], other.id)
    rebuilt = compute.wait_for_server(servers['rebuilt'], wait=WAIT,
                                      interval=helpers.POLL)
    assert rebuilt.launched_at != launched
    compute.wait_for_delete(servers['deleted'], wait=WAIT,
                            interval=helpers.POLL)
    compute.wait_for_server(servers['resized'], status='VERIFY_RESIZE',
                            wait=WAIT, interval=helpers.POLL)
    compute.confirm_server_resize(servers['resized'])
    resized = compute.wait_for_server(servers['resized'], wait=WAIT,
                                      interval=helpers.POLL)
    assert resized.flavor.name == OTHER_FLAVOR

    since = 'since warm migration %s began' % migration
    refused(journal, 'sync', migration, servers, {
        'rebuilt': 'was rebuilt (launched at %s, now at %s) %s' % (
            launched, rebuilt.launched_at, since),
        'deleted': 'was deleted at the source during warm migration %s'
                   % migration,
        'resized': 'was resized (flavor %s, now %s) %s' % (
            FLAVOR, OTHER_FLAVOR, since)})
    refused(journal, 'cutover', migration, servers, {
        'rebuilt': 'was rebuilt', 'deleted': 'was deleted',
        'resized': 'was resized'})
    # no source was stopped, nothing booted at the destination
    for case in ('rebuilt', 'resized'):
        assert warm.status(src, servers[case].id) == 'ACTIVE', case
    assert dest_view(dst, migration)['servers'] == before['servers']

    code, out, err = run(journal, 'migration', 'rollback', migration, '-f',
                         'json')
    assert code == 0, err[-3000:]
    assert {row['State'] for row in json.loads(out)} == {'rolled-back'}
    assert dest_view(dst, migration) == before
    for case in ('rebuilt', 'resized'):
        assert warm.status(src, servers[case].id) == 'ACTIVE', case
