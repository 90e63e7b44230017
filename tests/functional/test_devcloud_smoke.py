"""devcloud proves itself: each cloud does what migrations will need.

Runs on BOTH clouds (the ``cloud_name`` fixture is parametrised);
devcloud-b's two compute hosts are tested on their own.  The restart of
the whole bed is in test_devcloud_restart.py: it needs the bed to itself,
the tests here share it with the other modules (their own names and
CIDRs).
"""

import concurrent.futures
import json
import os
import subprocess
import sysconfig

import openstack

from overcloud_devcloud import bootstrap
from overcloud_devcloud import layout as layout_mod
from tests.functional import helpers

WAIT = 120
POLL = helpers.POLL


def test_keystone_auth_for_admin_and_member(devcloud, cloud_name):
    for name in (cloud_name, cloud_name + '-member'):
        conn = openstack.connect(cloud=name)
        assert conn.session.get_token()
        assert conn.current_project.name == 'demo'
    # The real openstack command reads the same clouds.yaml.
    openstack_cli = os.path.join(sysconfig.get_path('scripts'), 'openstack')
    out = subprocess.run([openstack_cli, '--os-cloud', cloud_name,
                          'token', 'issue', '-f', 'json'],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)['project_id'] == \
        openstack.connect(cloud=cloud_name).current_project_id


def test_member_is_not_admin(devcloud, cloud_name):
    member = openstack.connect(cloud=cloud_name + '-member')
    assert [f.name for f in member.compute.flavors()]
    try:
        member.identity.create_project(name='never-created')
    except openstack.exceptions.ForbiddenException:
        pass
    else:
        raise AssertionError('a member user could create projects')


def test_bed_resources_exist(conn):
    flavors = {f.name: f for f in conn.compute.flavors()}
    assert flavors['m1.tiny'].ram == 512 and flavors['m1.small'].vcpus == 1
    public = conn.network.find_network('public')
    assert public.is_router_external
    image = conn.image.find_image(bootstrap.IMAGE_NAME)
    assert image.status == 'active' and image.disk_format == 'raw'
    data = conn.image.download_image(image).content
    assert data == bootstrap.image_bytes()


def test_image_upload_download_identical(conn, cleanup):
    payload = os.urandom(3 * 1024 * 1024 + 17)
    image = conn.image.create_image(
        name='smoke-image', disk_format='raw', container_format='bare',
        data=payload, allow_duplicates=True)
    cleanup(lambda: conn.image.delete_image(image, ignore_missing=True))
    image = conn.image.wait_for_status(image, 'active', failures=['killed'],
                                       wait=WAIT, interval=POLL)
    assert image.size == len(payload)
    assert conn.image.download_image(image).content == payload


def _network_world(conn, cleanup, cidr, prefix):
    """Network, subnet, router with gateway and interface, security group."""
    net = conn.network.create_network(name=prefix + '-net')
    cleanup(lambda: conn.network.delete_network(net))
    subnet = conn.network.create_subnet(network_id=net.id, ip_version=4,
                                        cidr=cidr, name=prefix + '-subnet')
    cleanup(lambda: conn.network.delete_subnet(subnet))
    public = conn.network.find_network('public')
    router = conn.network.create_router(
        name=prefix + '-router',
        external_gateway_info={'network_id': public.id})
    cleanup(lambda: conn.network.delete_router(router))
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    cleanup(lambda: conn.network.remove_interface_from_router(
        router, subnet_id=subnet.id))
    group = conn.network.create_security_group(name=prefix + '-sg')
    cleanup(lambda: conn.network.delete_security_group(group))
    for rule in ({'protocol': 'tcp', 'port_range_min': 22,
                  'port_range_max': 22, 'remote_ip_prefix': '0.0.0.0/0'},
                 {'protocol': 'icmp', 'remote_group_id': group.id}):
        conn.network.create_security_group_rule(
            security_group_id=group.id, direction='ingress', ethertype='IPv4',
            **rule)
    return net, subnet, router, group


def _boot(conn, cleanup, name, port, **extra):
    server = conn.compute.create_server(
        name=name, flavor_id=conn.compute.find_flavor('m1.tiny').id,
        image_id=conn.image.find_image(bootstrap.IMAGE_NAME).id,
        networks=[{'port': port.id}], **extra)
    cleanup(lambda: conn.compute.wait_for_delete(
        conn.compute.delete_server(server) or server, wait=WAIT, interval=POLL))
    return server


def test_network_server_stop_snapshot(devcloud, conn, cloud_name, cleanup):
    net, subnet, router, group = _network_world(conn, cleanup,
                                                '10.77.0.0/24', 'smoke')
    router = conn.network.get_router(router)
    gateway_ips = router.external_gateway_info['external_fixed_ips']
    assert gateway_ips and gateway_ips[0]['ip_address'].startswith('172.24.4.')
    rules = list(conn.network.security_group_rules(security_group_id=group.id))
    assert {r.protocol for r in rules} >= {'tcp', 'icmp'}
    assert any(r.remote_group_id == group.id for r in rules)

    port = conn.network.create_port(
        network_id=net.id, name='smoke-port', security_group_ids=[group.id],
        fixed_ips=[{'subnet_id': subnet.id, 'ip_address': '10.77.0.50'}])
    cleanup(lambda: conn.network.delete_port(port, ignore_missing=True))
    public = conn.network.find_network('public')
    fip = conn.network.create_ip(floating_network_id=public.id,
                                 port_id=port.id)
    cleanup(lambda: conn.network.delete_ip(fip))
    assert fip.fixed_ip_address == '10.77.0.50'

    server = _boot(conn, cleanup, 'smoke-server', port)
    server = conn.compute.wait_for_server(server, wait=WAIT, interval=POLL)
    addresses = [a['addr'] for a in server.addresses['smoke-net']]
    assert '10.77.0.50' in addresses
    assert conn.network.get_port(port).binding_vif_type == 'ovs'

    conn.compute.stop_server(server)
    conn.compute.wait_for_server(server, status='SHUTOFF', wait=WAIT, interval=POLL)

    # The guest wrote to its disk: the snapshot must carry these bytes,
    # not merely the boot image.
    disk = devcloud.layout.server_disk(cloud_name, server.id)
    with open(disk, 'r+b') as handle:
        handle.seek(4096)
        handle.write(b'written by the guest ' + server.id.encode())
    expected = disk.read_bytes()
    assert expected != bootstrap.image_bytes()

    snapshot = _snapshot(conn, cleanup, server, 'smoke-snapshot')
    assert snapshot.disk_format == 'raw'
    assert snapshot.size == len(expected)
    assert conn.image.download_image(snapshot).content == expected


def _snapshot(conn, cleanup, server, name):
    image = conn.compute.create_server_image(server, name, wait=False)
    cleanup(lambda: conn.image.delete_image(image, ignore_missing=True))
    return conn.image.wait_for_status(conn.image.get_image(image), 'active',
                                      failures=['killed', 'deleted'],
                                      wait=WAIT, interval=POLL)


def test_parallel_boot_stop_snapshot(devcloud, conn, cleanup):
    """Several servers booted, stopped and snapshotted at once all succeed."""
    net, subnet, _router, _group = _network_world(conn, cleanup,
                                                  '10.78.0.0/24', 'par')
    count = 4
    ports = []
    for i in range(count):
        port = conn.network.create_port(
            network_id=net.id, name='par-port-%d' % i,
            fixed_ips=[{'subnet_id': subnet.id,
                        'ip_address': '10.78.0.%d' % (20 + i)}])
        cleanup(lambda port=port: conn.network.delete_port(
            port, ignore_missing=True))
        ports.append(port)
    servers = [_boot(conn, cleanup, 'par-server-%d' % i, ports[i])
               for i in range(count)]

    def lifecycle(server):
        server = conn.compute.wait_for_server(server, wait=WAIT, interval=POLL)
        conn.compute.stop_server(server)
        conn.compute.wait_for_server(server, status='SHUTOFF', wait=WAIT, interval=POLL)
        return _snapshot(conn, cleanup, server, server.name + '-snap')

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        snapshots = list(pool.map(lifecycle, servers))
    assert [s.status for s in snapshots] == ['active'] * count
    assert all(s.size == len(bootstrap.image_bytes()) for s in snapshots)


def test_devcloud_b_has_two_compute_hosts_each_bootable(devcloud, cleanup):
    """Both computes of devcloud-b are up, mapped into cell1 with their
    own node, and an admin can boot a server on each by host name."""
    conn = openstack.connect(cloud='devcloud-b')
    hosts = layout_mod.compute_hosts('devcloud-b')
    assert len(hosts) == 2
    services = {s.host: s for s in conn.compute.services()
                if s.binary == 'nova-compute'}
    assert sorted(services) == sorted(hosts)
    assert all(services[h].state == 'up' and services[h].status == 'enabled'
               for h in hosts)
    hypervisors = {h.name: h for h in conn.compute.hypervisors(details=True)}
    assert sorted(hypervisors) == sorted(hosts)
    assert hypervisors[hosts[0]].id != hypervisors[hosts[1]].id
    providers = {rp.name: rp.id
                 for rp in conn.placement.resource_providers()}
    assert set(hosts) <= set(providers)
    assert providers[hosts[0]] != providers[hosts[1]]
    for row in devcloud.status():
        if row['service'].startswith('devcloud-b/nova-compute'):
            assert row['running'] and row['answers'], row

    net, subnet, _router, _group = _network_world(conn, cleanup,
                                                  '10.76.0.0/24', 'hosts')
    servers = {}
    for number, host in enumerate(hosts):
        port = conn.network.create_port(network_id=net.id,
                                        name='hosts-port-%d' % number)
        cleanup(lambda port=port: conn.network.delete_port(
            port, ignore_missing=True))
        server = conn.compute.create_server(
            name='hosts-server-%d' % number,
            flavor_id=conn.compute.find_flavor('m1.tiny').id,
            image_id=conn.image.find_image(bootstrap.IMAGE_NAME).id,
            networks=[{'port': port.id}], host=host)
        cleanup(lambda server=server: conn.compute.wait_for_delete(
            conn.compute.delete_server(server) or server, wait=WAIT, interval=POLL))
        servers[host] = server
    for host, server in servers.items():
        server = conn.compute.wait_for_server(server, failures=['ERROR'],
                                              wait=WAIT, interval=POLL)
        assert server.compute_host == host
        assert server.hypervisor_hostname == host
        # The disk file lives with that host's compute, not the other's.
        disk = devcloud.layout.server_disk('devcloud-b', server.id, host)
        assert disk.read_bytes() == bootstrap.image_bytes()
        for other in hosts:
            if other != host:
                assert not devcloud.layout.server_disk(
                    'devcloud-b', server.id, other).exists()
