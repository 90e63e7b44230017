"""`openstack overcloud migrate --order dependency --pin-hosts` on devcloud.

devcloud-b has two compute hosts.  Traffic from a flow file splits the
3-tier project into two groups (web + app talk, db talks to nobody); each
server is booted on the host the planner placed its group on, as the
plan file records, and a bad hand-edited host stops the run at precheck.
"""

import json

import openstack
import pytest
import yaml

from overcloud_devcloud import layout as layout_mod
from tests.functional import helpers

#: about how long this module takes on CI, in seconds (tests/conftest.py
#: hands the long ones out first)
SECONDS = 200
PREFIX = 'ph'
SERVERS = helpers.servers_of(PREFIX)
HOSTS = layout_mod.compute_hosts('devcloud-b')
TAG = 'om:src:'


@pytest.fixture(scope='module')
def project(clouds):
    return {s.name: s.id for s in clouds[2].servers.values()}


def run(journal, *args, cloud='devcloud-a'):
    return helpers.overcloud(*args, journal=journal, cloud=cloud)


def flow_file(tmp_path):
    flows = tmp_path / 'flows.csv'
    flows.write_text('source,destination,bytes\n'
                     '10.10.1.10,10.10.2.10,900000\n'
                     '10.10.2.10,10.10.1.10,700000\n')
    return flows


def copies(conn, ids):
    """{source id: destination server} of the servers tagged as copies."""
    found = {}
    for source_id in ids:
        tag = TAG + source_id
        for server in conn.compute.servers(tags=tag):
            if tag in (server.tags or []):
                found[source_id] = conn.compute.get_server(server.id)
    return found


def nothing_created(dst):
    assert not [n for n in dst.network.networks()
                if n.name.startswith(PREFIX + '-')]
    assert not [s for s in dst.compute.servers()
                if s.name.startswith(PREFIX + '-')]


def test_each_server_boots_on_its_planned_host(project, tmp_path):
    journal = helpers.journal_url(tmp_path / 'journal.sqlite')
    # Capacity for two tiny servers on the second host, one on the first:
    # the web + app group must go to the second, db to the first.
    hosts = tmp_path / 'hosts.yaml'
    hosts.write_text(yaml.safe_dump({'hosts': [
        {'name': HOSTS[1], 'vcpus': 2, 'ram_mb': 1024, 'disk_gb': 2},
        {'name': HOSTS[0], 'vcpus': 1, 'ram_mb': 512, 'disk_gb': 1}]}))
    plan_file = tmp_path / 'plan.yaml'
    code, out, err = run(journal, 'migrate', *SERVERS, '--dest-cloud',
                         'devcloud-b', '--order', 'dependency', '--flows',
                         str(flow_file(tmp_path)), '--host-capacity',
                         str(hosts), '--pin-hosts', '--plan-file',
                         str(plan_file), '-f', 'json')
    assert code == 0, err
    plan = yaml.safe_load(plan_file.read_text())
    planned = {s['id']: s['dest_host'] for s in plan['servers']}
    groups = [g['server_ids'] for w in plan['order']['waves']
              for g in w['groups']]
    assert sorted(map(sorted, groups)) == sorted(
        [sorted([project['ph-web'], project['ph-app']]), [project['ph-db']]])
    assert planned == {project['ph-web']: HOSTS[1],
                       project['ph-app']: HOSTS[1],
                       project['ph-db']: HOSTS[0]}
    rows = {r['Name']: r for r in json.loads(out) if r['Type'] == 'server'}
    assert {n: r['Destination Host'] for n, r in rows.items()} == {
        'ph-web': HOSTS[1], 'ph-app': HOSTS[1], 'ph-db': HOSTS[0]}
    assert {r['Status'] for r in rows.values()} == {'done'}

    dst = openstack.connect(cloud='devcloud-b')
    booted = copies(dst, project.values())
    assert sorted(booted) == sorted(project.values())
    for source_id, server in booted.items():
        assert server.compute_host == planned[source_id], server.name
    for group in groups:
        assert len({booted[sid].compute_host for sid in group}) == 1

    code, out, err = run(journal, 'migration', 'list', '-f', 'json')
    migration = json.loads(out)[-1]['ID']
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err


def test_dry_run_shows_the_hosts_placement_planned(project, tmp_path):
    """Without --host-capacity the planner reads Placement: the hosts it
    names are devcloud-b's compute hosts, and a group shares one."""
    journal = helpers.journal_url(tmp_path / 'journal.sqlite')
    dst = openstack.connect(cloud='devcloud-b')
    code, out, err = run(journal, 'migrate', *SERVERS, '--dest-cloud',
                         'devcloud-b', '--order', 'dependency', '--flows',
                         str(flow_file(tmp_path)), '--pin-hosts',
                         '--dry-run', '-f', 'json')
    assert code == 0, err
    rows = {r['Name']: r['Destination Host'] for r in json.loads(out)
            if r['Type'] == 'server'}
    assert set(rows) == set(SERVERS)
    assert set(rows.values()) <= set(HOSTS)
    assert rows['ph-web'] == rows['ph-app']
    assert 'Destination hosts: ' in err
    nothing_created(dst)


def test_a_bad_hand_edited_host_fails_at_precheck(project, tmp_path):
    journal = helpers.journal_url(tmp_path / 'journal.sqlite')
    dst = openstack.connect(cloud='devcloud-b')
    plan_file = tmp_path / 'plan.yaml'
    code, _out, err = run(journal, 'migrate', *SERVERS, '--dest-cloud',
                          'devcloud-b', '--plan-file', str(plan_file),
                          '--dry-run')
    assert code == 0, err
    plan = yaml.safe_load(plan_file.read_text())
    assert all(s['dest_host'] is None for s in plan['servers'])
    for server in plan['servers']:
        server['dest_host'] = (HOSTS[0] if server['name'] != 'ph-db'
                               else 'devcloud-b-compute-9')
    plan_file.write_text(yaml.safe_dump(plan))
    code, _out, err = run(journal, 'migrate', '--from-plan', str(plan_file),
                          '--dest-cloud', 'devcloud-b')
    assert code != 0
    assert '1 precheck failed; nothing was changed' in err
    assert 'ph-db' in err and "'devcloud-b-compute-9'" in err
    assert 'Traceback' not in err
    nothing_created(dst)
    code, out, _err = run(journal, 'migration', 'list', '-f', 'json')
    assert json.loads(out) == []


def test_pin_hosts_needs_admin_at_the_destination(project, tmp_path):
    journal = helpers.journal_url(tmp_path / 'journal.sqlite')
    code, _out, err = run(journal, 'migrate', *SERVERS, '--dest-cloud',
                          'devcloud-b-member', '--order', 'dependency',
                          '--flows', str(flow_file(tmp_path)),
                          '--pin-hosts')
    assert code != 0
    assert '--pin-hosts needs the admin role at the destination' in err
    assert 'Traceback' not in err
    nothing_created(openstack.connect(cloud='devcloud-b'))


def test_pin_hosts_needs_an_order_to_take_hosts_from(devcloud, tmp_path):
    journal = helpers.journal_url(tmp_path / 'journal.sqlite')
    code, _out, err = run(journal, 'migrate', 'ph-web', '--dest-cloud',
                          'devcloud-b', '--pin-hosts')
    assert code != 0
    assert '--pin-hosts goes with --order dependency' in err
    code, _out, err = run(journal, 'migrate', 'ph-web', '--dest-cloud',
                          'devcloud-b', '--pin-hosts', '--no-pin-hosts')
    assert code != 0 and 'not allowed with argument' in err
