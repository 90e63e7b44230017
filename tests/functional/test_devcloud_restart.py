"""devcloud restarts: ``up`` twice does nothing, ``down`` and ``up`` again
keep the servers (on both clouds, devcloud-b's second compute host too).

Alone in its module: it stops the whole bed, so it needs the bed to
itself (``BED_ACCESS = 'exclusive'``), and the other devcloud tests
(test_devcloud_smoke.py) share it meanwhile.
"""

import openstack

from overcloud_devcloud import layout as layout_mod
from tests.functional.test_devcloud_smoke import POLL
from tests.functional.test_devcloud_smoke import WAIT
from tests.functional.test_devcloud_smoke import _boot
from tests.functional.test_devcloud_smoke import _network_world

#: the test stops and restarts the whole bed
BED_ACCESS = 'exclusive'


def test_up_is_idempotent_and_a_warm_restart_keeps_servers(devcloud,
                                                           cleanup):
    conn = openstack.connect(cloud='devcloud-a')
    net, subnet, _router, _group = _network_world(conn, cleanup,
                                                  '10.79.0.0/24', 'restart')
    port = conn.network.create_port(network_id=net.id, name='restart-port')
    cleanup(lambda: conn.network.delete_port(port, ignore_missing=True))
    server = _boot(conn, cleanup, 'restart-server', port)
    server = conn.compute.wait_for_server(server, wait=WAIT, interval=POLL)
    # One more on devcloud-b's second compute host: its node identity and
    # disk files must survive the restart too.
    conn_b = openstack.connect(cloud='devcloud-b')
    second = layout_mod.compute_hosts('devcloud-b')[1]
    net_b, _subnet_b, _router_b, _group_b = _network_world(
        conn_b, cleanup, '10.79.1.0/24', 'restart-b')
    port_b = conn_b.network.create_port(network_id=net_b.id,
                                        name='restart-b-port')
    cleanup(lambda: conn_b.network.delete_port(port_b, ignore_missing=True))
    server_b = _boot(conn_b, cleanup, 'restart-b-server', port_b, host=second)
    server_b = conn_b.compute.wait_for_server(server_b, wait=WAIT, interval=POLL)
    assert server_b.compute_host == second

    assert devcloud.up() == 'running'  # a second call does nothing
    pids = {row['service']: row['pid'] for row in devcloud.status()}

    stopped = devcloud.down()
    assert set(stopped) == set(pids)
    assert not any(row['running'] for row in devcloud.status())
    assert devcloud.up() == 'warm'
    rows = devcloud.status()
    assert [row['service'] for row in rows
            if not (row['running'] and row['answers'])] == []
    assert all(row['pid'] != pids[row['service']] for row in rows)

    for cloud, server_id in (('devcloud-a', server.id),
                             ('devcloud-b', server_b.id)):
        fresh = openstack.connect(cloud=cloud)
        found = fresh.compute.get_server(server_id)
        assert found.status == 'ACTIVE' and found.power_state == 1
        fresh.compute.stop_server(found)  # the restarted driver knows it
        fresh.compute.wait_for_server(found, status='SHUTOFF', wait=WAIT, interval=POLL)
