"""``openstack overcloud dependency show`` against devcloud.

Three servers (dep-web, dep-app, dep-db) on their own network in
devcloud-a, with fixed IPs; the real ``openstack`` command maps a flow
file in terms of those IPs to the servers and plans them.
"""

import json
import os
import subprocess
import sysconfig

import openstack
import pytest

from overcloud_devcloud import bootstrap
from tests.functional import helpers

WAIT = 180
POLL = helpers.POLL
CIDR = '10.88.0.0/24'
IPS = {'dep-web': '10.88.0.11', 'dep-app': '10.88.0.12',
       'dep-db': '10.88.0.13'}


@pytest.fixture(scope='module')
def three_servers(devcloud, module_cleanup):
    """The three servers, made once for the module's tests (they only
    read them)."""
    cleanup = module_cleanup
    conn = openstack.connect(cloud='devcloud-a')
    cleanup(conn.close)
    net = conn.network.create_network(name='dep-net')
    cleanup(lambda: conn.network.delete_network(net))
    subnet = conn.network.create_subnet(network_id=net.id, ip_version=4,
                                        cidr=CIDR, name='dep-subnet')
    cleanup(lambda: conn.network.delete_subnet(subnet))
    group = conn.network.create_security_group(name='dep-sg')
    cleanup(lambda: conn.network.delete_security_group(group))
    conn.network.create_security_group_rule(
        security_group_id=group.id, direction='ingress', ethertype='IPv4',
        protocol='tcp', remote_group_id=group.id)
    flavor = conn.compute.find_flavor('m1.tiny', ignore_missing=False)
    image = conn.image.find_image(bootstrap.IMAGE_NAME, ignore_missing=False)
    servers = {}
    for name, ip in IPS.items():
        port = conn.network.create_port(
            network_id=net.id, name=name + '-port',
            fixed_ips=[{'subnet_id': subnet.id, 'ip_address': ip}],
            security_group_ids=[group.id])
        cleanup(lambda port=port: conn.network.delete_port(
            port, ignore_missing=True))
        server = conn.compute.create_server(
            name=name, flavor_id=flavor.id, image_id=image.id,
            networks=[{'port': port.id}])
        cleanup(lambda server=server: conn.compute.wait_for_delete(
            conn.compute.delete_server(server) or server, wait=WAIT, interval=POLL))
        servers[name] = server
    for name, server in servers.items():
        servers[name] = conn.compute.wait_for_server(
            server, failures=['ERROR'], wait=WAIT, interval=POLL)
    return servers, flavor


def run_show(devcloud, *argv):
    openstack_cli = os.path.join(sysconfig.get_path('scripts'), 'openstack')
    env = dict(os.environ, **devcloud.environment())
    env.pop('OVERCLOUD_MIGRATE_DEST_CLOUD', None)
    return subprocess.run(
        [openstack_cli, '--os-cloud', 'devcloud-a', 'overcloud',
         'dependency', 'show', 'dep-web', 'dep-app', 'dep-db', *argv,
         '-f', 'json'],
        capture_output=True, text=True, env=env, timeout=300)


def test_flows_give_the_expected_groups(devcloud, three_servers, tmp_path):
    servers, flavor = three_servers
    flows = tmp_path / 'flows.csv'
    flows.write_text('source,destination,bytes\n'
                     f'{IPS["dep-web"]},{IPS["dep-app"]},900000\n'
                     f'{IPS["dep-app"]},{IPS["dep-web"]},100000\n'
                     f'{IPS["dep-app"]},{IPS["dep-db"]},2000\n'
                     f'198.51.100.7,{IPS["dep-web"]},50\n')
    # Two hosts with room for two servers each: web and app share one.
    hosts = tmp_path / 'hosts.yaml'
    room = {'vcpus': 2 * flavor.vcpus, 'ram_mb': 2 * flavor.ram,
            'disk_gb': 2 * flavor.disk + 10}
    hosts.write_text(json.dumps({'hosts': {'h1': room, 'h2': room}}))
    graph = tmp_path / 'plan.dot'
    result = run_show(devcloud, '--flows', str(flows), '--host-capacity',
                      str(hosts), '--graph', str(graph))
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r['Wave'] for r in rows} == {1}
    groups = sorted(sorted(r['Servers']) for r in rows)
    assert groups == [['dep-app', 'dep-web'], ['dep-db']]
    assert sum(r['Traffic Cut'] for r in rows) == 2 * 2000
    assert {r['Basis'] for r in rows} == {'flows'}
    assert '198.51.100.7' in result.stderr
    assert graph.read_text().count('subgraph cluster_') == 2

    strict = run_show(devcloud, '--flows', str(flows), '--host-capacity',
                      str(hosts), '--strict')
    assert strict.returncode == 1 and strict.stdout == ''
    assert 'refused with --strict' in strict.stderr


def test_estimate_with_placement_capacity(devcloud, three_servers):
    result = run_show(devcloud, '--dest-cloud', 'devcloud-b')
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r['Basis'] for r in rows} == {'topology estimate'}
    assert 'ESTIMATE' in result.stderr
    dest = openstack.connect(cloud='devcloud-b')
    try:
        names = {rp.name for rp in dest.placement.resource_providers()}
    finally:
        dest.close()
    assert {r['Target Host'] for r in rows} <= names
    assert sorted(s for r in rows for s in r['Servers']) == [
        'dep-app', 'dep-db', 'dep-web']
