"""``openstack overcloud receiver status|run`` in-process, through OSC's
shell, on real item directories (no cloud is needed for these)."""

import io
import json
import os

from osc_lib import exceptions
import pytest
from openstackclient import shell

from overcloud_migrate import handoff
from overcloud_migrate.v1 import migrate
from tests.unit import test_handoff


@pytest.fixture(autouse=True)
def no_cloud(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith('OS_') or key.startswith('OVERCLOUD_MIGRATE'):
            monkeypatch.delenv(key)
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(tmp_path / 'none.yaml'))


def run(monkeypatch, *argv):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr('sys.stdout', out)
    monkeypatch.setattr('sys.stderr', err)
    code = shell.OpenStackShell().run(['overcloud', 'receiver'] + list(argv))
    return code, out.getvalue(), err.getvalue()


def test_status_has_one_row_per_item(monkeypatch, tmp_path):
    root = tmp_path / 'handoff'
    root.mkdir()
    test_handoff.write_item(root, name='m1-pending')
    test_handoff.write_item(root, name='m1-writing', marker=False)
    test_handoff.write_item(root, name='m1-busy')
    handoff.write_status(str(root), 'm1-busy', {'state': 'processing',
                                                'server_name': 'web',
                                                'server_id': 'v1'})
    test_handoff.write_item(root, name='m1-ok')
    handoff.write_status(str(root), 'm1-ok', {
        'state': 'done', 'server_name': 'web', 'server_id': 'v1',
        'dest_server_id': 'd1', 'reason': None})
    handoff.move(str(root), 'm1-ok', handoff.DONE)
    test_handoff.write_item(root, name='m1-bad')
    handoff.write_status(str(root), 'm1-bad', {
        'state': 'failed', 'server_name': 'web', 'server_id': 'v1',
        'reason': 'plan.json is truncated'})
    handoff.move(str(root), 'm1-bad', handoff.FAILED)
    code, out, err = run(monkeypatch, 'status', '--watch', str(root),
                         '-f', 'json')
    assert code == 0, err
    rows = {r['Item']: r for r in json.loads(out)}
    assert set(rows) == {'m1-pending', 'm1-writing', 'm1-busy',
                         'done/m1-ok', 'failed/m1-bad'}
    assert rows['m1-pending']['State'] == 'pending'
    assert rows['m1-pending']['Server'] == 'web'
    assert rows['m1-writing']['State'] == 'incomplete'
    assert rows['m1-busy']['State'] == 'processing'
    assert rows['done/m1-ok']['State'] == 'done'
    assert rows['done/m1-ok']['Destination ID'] == 'd1'
    assert rows['failed/m1-bad']['Reason'] == 'plan.json is truncated'
    assert set(rows['m1-pending']) == {'Item', 'Server', 'Server ID',
                                       'State', 'Reason', 'Destination ID',
                                       'Updated'}


def test_status_of_a_missing_directory_says_so(monkeypatch, tmp_path):
    code, _out, err = run(monkeypatch, 'status', '--watch',
                          str(tmp_path / 'nope'))
    assert code == 1
    assert 'does not exist' in err


def test_run_needs_a_destination_cloud(monkeypatch, tmp_path):
    code, _out, err = run(monkeypatch, 'run', '--watch', str(tmp_path),
                          '--journal-url',
                          'sqlite:///%s' % (tmp_path / 'j.sqlite'))
    assert code == 1
    assert 'No destination cloud' in err
    assert 'Traceback' not in err


@pytest.mark.parametrize('extra,message', [
    (['--dest-cloud', 'b'], 'drop --dest-cloud'),
    (['--network-only'], 'does not go with --network-only'),
    (['--order', 'dependency'], 'give --host-capacity'),
])
def test_migrate_handoff_refuses_what_it_cannot_do(extra, message):
    cmd = migrate.MigrateServer(None, None)
    args = cmd.get_parser('openstack overcloud migrate').parse_args(
        ['web', '--handoff', '/tmp/x', '--transport', 'sharedfs'] + extra)
    with pytest.raises(exceptions.CommandError) as caught:
        cmd._validate(args)
    assert message in str(caught.value)


def test_migrate_handoff_sets_the_transport_directory():
    cmd = migrate.MigrateServer(None, None)
    parser = cmd.get_parser('openstack overcloud migrate')
    args = parser.parse_args(['web', '--handoff', '/srv/h', '--transport',
                              'sharedfs', '--sharedfs-dir', '/elsewhere'])
    cmd._validate(args)
    options = migrate.run_options(args)
    assert options.handoff == '/srv/h'
    assert options.transport_options == {'directory': '/srv/h'}
    args = parser.parse_args(['web', '--handoff', '/srv/h', '--transport',
                              'ssh', '--ssh-host', 'u@dtn'])
    assert migrate.run_options(args).transport_options == {
        'host': 'u@dtn', 'directory': '/srv/h'}
