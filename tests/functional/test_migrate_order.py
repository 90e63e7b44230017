"""`openstack overcloud migrate --order dependency` on devcloud.

Traffic from a flow file decides the waves; the plan file records them and
the journal shows the migration followed them.
"""

import json

import openstack
import pytest
import yaml

from tests.functional import helpers

#: about how long this module takes on CI, in seconds (tests/conftest.py
#: hands the long ones out first)
SECONDS = 180
PREFIX = 'mo'
SERVERS = ['%s-db' % PREFIX, '%s-web' % PREFIX, '%s-app' % PREFIX]


@pytest.fixture(scope='module')
def project(clouds):
    return clouds[2]


def run(journal, *args):
    return helpers.overcloud(*args, journal=journal)


def test_migration_follows_the_planned_waves(project, tmp_path):
    journal = helpers.journal_url(tmp_path / 'journal.sqlite')
    flows = tmp_path / 'flows.csv'
    # web <-> app talk a lot; db talks to nobody: two groups, and the host
    # capacities below hold one tiny server each, so waves split.
    flows.write_text('source,destination,bytes\n'
                     '10.10.1.10,10.10.2.10,900000\n'
                     '10.10.2.10,10.10.1.10,700000\n')
    hosts = tmp_path / 'hosts.yaml'
    hosts.write_text(yaml.safe_dump({'hosts': [
        {'name': 'host-1', 'vcpus': 2, 'ram_mb': 1024, 'disk_gb': 2},
        {'name': 'host-2', 'vcpus': 1, 'ram_mb': 512, 'disk_gb': 1}]}))
    plan_file = tmp_path / 'plan.yaml'
    code, out, err = run(journal, 'migrate', *SERVERS, '--dest-cloud',
                         'devcloud-b', '--order', 'dependency', '--flows',
                         str(flows), '--host-capacity', str(hosts),
                         '--plan-file', str(plan_file), '-f', 'json')
    assert code == 0, err
    plan = yaml.safe_load(plan_file.read_text())
    groups = [sorted(g['server_ids']) for w in plan['order']['waves']
              for g in w['groups']]
    ids = {s.name: s.id for s in project.servers.values()}
    assert sorted([ids['mo-app'], ids['mo-web']]) in groups
    assert [ids['mo-db']] in groups
    # The servers ran in the plan's order, and the journal says so.
    order = [sid for w in plan['order']['waves'] for g in w['groups']
             for sid in g['server_ids']]
    code, out, err = run(journal, 'migration', 'list', '-f', 'json')
    migration = json.loads(out)[-1]['ID']
    code, out, err = run(journal, 'migration', 'show', migration, '-f',
                         'json')
    shown = json.loads(out)
    assert [s['Source ID'] for s in shown['servers']] == order
    assert any(' wave 1: ' in e for e in shown['events'])
    assert all(s['Status'] == 'done' for s in shown['servers'])
    code, _out, err = run(journal, 'migration', 'rollback', migration)
    assert code == 0, err


def test_order_options_need_order_dependency(project, tmp_path):
    journal = helpers.journal_url(tmp_path / 'journal.sqlite')
    code, _out, err = run(journal, 'migrate', *SERVERS, '--dest-cloud',
                          'devcloud-b', '--flows', 'x.csv')
    assert code != 0 and 'go with --order dependency' in err


def test_a_malformed_flow_file_fails_before_any_change(project, tmp_path):
    journal = helpers.journal_url(tmp_path / 'journal.sqlite')
    flows = tmp_path / 'flows.csv'
    flows.write_text('source,destination,bytes\n10.10.1.10,10.10.2.10,lots\n')
    code, _out, err = run(journal, 'migrate', *SERVERS, '--dest-cloud',
                          'devcloud-b', '--order', 'dependency', '--flows',
                          str(flows))
    assert code != 0 and 'line 2' in err and 'Traceback' not in err
    dst = openstack.connect(cloud='devcloud-b')
    assert not [n for n in dst.network.networks()
                if n.name.startswith(PREFIX + '-')]
