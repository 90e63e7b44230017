"""``openstack overcloud dependency show`` in-process.

The source cloud's inventory is the one edge a unit test cannot run: the
command gets it from :func:`dependency.source_inventory`, replaced here by
a function returning plain data. Everything else is real: OSC's shell, the
entry point, argument parsing, the planner and the output formatters.
"""

import json
import os

import pytest
from openstackclient import shell

from overcloud_migrate.planner import inputs
from overcloud_migrate.planner import model
from overcloud_migrate.v1 import dependency

AUTH = ['--os-auth-type', 'none', '--os-endpoint', 'http://127.0.0.1:9']


def inventory():
    servers = [model.ServerInfo(f'id{i}', name, (f'10.0.0.{i + 1}',),
                                2, 2048, 20)
               for i, name in enumerate(
                   ['web1', 'app1', 'db1', 'web2', 'app2', 'db2'])]
    return inputs.Inventory(
        servers=servers, outside={'10.0.0.99'},
        networks={'id0': ['front'], 'id1': ['front', 'back'],
                  'id2': ['back'], 'id3': ['front2'],
                  'id4': ['front2', 'back2'], 'id5': ['back2']},
        security_groups={s.id: [] for s in servers}, remote_groups={})


@pytest.fixture(autouse=True)
def fake_source(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith('OS_') or key.startswith('OVERCLOUD_MIGRATE'):
            monkeypatch.delenv(key)
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(tmp_path / 'none.yaml'))
    calls = []

    def source_inventory(conn, wanted=(), topology_needed=False):
        calls.append({'wanted': list(wanted),
                      'topology_needed': topology_needed})
        return inventory()

    monkeypatch.setattr(dependency, 'source_inventory', source_inventory)
    return calls


@pytest.fixture
def files(tmp_path):
    flows = tmp_path / 'flows.csv'
    flows.write_text('source,destination,bytes\n'
                     '10.0.0.1,10.0.0.2,1000\n'
                     'app1,db1,800\n'
                     '10.0.0.4,10.0.0.5,600\n'
                     '10.0.0.5,10.0.0.6,500\n'
                     '10.0.0.3,10.0.0.4,5\n'
                     '192.0.2.1,10.0.0.1,70\n'
                     '10.0.0.99,10.0.0.1,70\n')
    hosts = tmp_path / 'hosts.yaml'
    hosts.write_text('hosts:\n'
                     '  cn1: {vcpus: 6, ram_mb: 16384, disk_gb: 100}\n'
                     '  cn2: {vcpus: 6, ram_mb: 16384, disk_gb: 100}\n')
    return {'flows': str(flows), 'hosts': str(hosts), 'dir': tmp_path}


def run(capsys, *argv):
    code = shell.OpenStackShell().run(
        AUTH + ['overcloud', 'dependency', 'show'] + list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_rows_warning_and_graph(capsys, files, fake_source):
    graph = files['dir'] / 'plan.dot'
    code, out, err = run(capsys, '--flows', files['flows'],
                         '--host-capacity', files['hosts'],
                         '--graph', str(graph), '-f', 'json')
    assert code == 0, err
    rows = json.loads(out)
    assert [r['Wave'] for r in rows] == [1, 2]
    assert [r['Servers'] for r in rows] == [['web1', 'app1', 'db1'],
                                            ['web2', 'app2', 'db2']]
    assert {r['Target Host'] for r in rows} == {'cn1', 'cn2'}
    assert [(r['Traffic Inside'], r['Traffic Cut']) for r in rows] == [
        (1800.0, 5.0), (1100.0, 5.0)]
    assert rows[0]['vCPU'] == 6 and rows[0]['RAM MB'] == 6144
    assert rows[0]['Basis'] == 'flows'
    # The unknown address is listed; the other project server's is not.
    assert '192.0.2.1' in err and '10.0.0.99' not in err
    assert fake_source == [{'wanted': [], 'topology_needed': False}]
    assert graph.read_text().count('subgraph cluster_') == 2


def test_servers_seed_algorithm_and_long(capsys, files, fake_source):
    code, out, err = run(capsys, 'web1', 'db2', '--flows', files['flows'],
                         '--host-capacity', files['hosts'],
                         '--algorithm', 'seed', '--long', '-f', 'json')
    assert code == 0, err
    rows = json.loads(out)
    assert fake_source[0]['wanted'] == ['web1', 'db2']
    assert sorted(i for r in rows for i in r['Server IDs']) == [
        f'id{i}' for i in range(6)]


def test_strict_refuses_unknown_addresses(capsys, files):
    graph = files['dir'] / 'plan.dot'
    code, out, err = run(capsys, '--flows', files['flows'],
                         '--host-capacity', files['hosts'], '--strict',
                         '--graph', str(graph), '-f', 'json')
    assert code == 1 and out == ''
    assert '192.0.2.1' in err and 'refused with --strict' in err
    assert not graph.exists()


def test_no_traffic_is_an_estimate(capsys, files, fake_source):
    code, out, err = run(capsys, '--host-capacity', files['hosts'],
                         '-f', 'json')
    assert code == 0, err
    rows = json.loads(out)
    assert {r['Basis'] for r in rows} == {'topology estimate'}
    assert sorted(sorted(r['Servers']) for r in rows) == [
        ['app1', 'db1', 'web1'], ['app2', 'db2', 'web2']]
    assert 'ESTIMATE' in err
    assert fake_source[0]['topology_needed'] is True


@pytest.mark.parametrize('setup, message', [
    (lambda d: ('flows', 'source,destination,bytes\na,b,1\na,b\n'),
     'flows.csv line 3: expected 3 fields'),
    (lambda d: ('pcap', 'not,a,capture\n'), 'is not a packet capture'),
    (lambda d: ('hosts', 'cn1: {vcpus: -1, ram_mb: 1, disk_gb: 1}\n'),
     'vcpus must be >= 0'),
    (lambda d: ('graph', None), 'must end in .dot, .svg, .png'),
    (lambda d: ('nohosts', None), 'destination hosts are unknown'),
])
def test_bad_input_fails_before_any_cloud_call(capsys, files, fake_source,
                                               setup, message):
    kind, text = setup(files)
    argv = ['--flows', files['flows'], '--host-capacity', files['hosts']]
    if kind in ('flows', 'pcap', 'hosts'):
        path = files['dir'] / {'flows': 'flows.csv', 'pcap': 'c.pcap',
                               'hosts': 'h.yaml'}[kind]
        path.write_text(text)
        if kind == 'pcap':
            argv = ['--pcap', str(path), '--host-capacity', files['hosts']]
        elif kind == 'hosts':
            argv[3] = str(path)
        else:
            argv[1] = str(path)
    elif kind == 'graph':
        argv += ['--graph', str(files['dir'] / 'g.pdf')]
    else:
        argv = argv[:2]
    code, out, err = run(capsys, *argv, '-f', 'json')
    assert code == 1 and out == ''
    assert message in err
    assert fake_source == []


def test_demand_above_capacity(capsys, files, tmp_path):
    small = tmp_path / 'small.yaml'
    small.write_text('cn1: {vcpus: 8, ram_mb: 65536, disk_gb: 500}\n')
    code, out, err = run(capsys, '--flows', files['flows'],
                         '--host-capacity', str(small), '-f', 'json')
    assert code == 1 and out == ''
    assert '12 vCPU needed, 8 free (4 short)' in err


def test_flows_and_pcap_exclude_each_other(capsys, files):
    with pytest.raises(SystemExit) as exc:
        run(capsys, '--flows', files['flows'], '--pcap', files['flows'],
            '--host-capacity', files['hosts'])
    assert exc.value.code == 2
