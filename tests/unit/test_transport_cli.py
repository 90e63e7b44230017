"""``openstack overcloud transport list`` in-process, through OSC's shell.

No cloud and no credentials: the command sets ``auth_required = False``.
"""

import io
import json
import os

import pytest
from openstackclient import shell


@pytest.fixture(autouse=True)
def no_cloud(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith('OS_') or key.startswith('OVERCLOUD_MIGRATE'):
            monkeypatch.delenv(key)
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(tmp_path / 'none.yaml'))


def run(monkeypatch, *argv):
    out = io.StringIO()
    monkeypatch.setattr('sys.stdout', out)
    code = shell.OpenStackShell().run(['overcloud', 'transport', 'list']
                                      + list(argv))
    return code, out.getvalue()


def test_json_lists_every_driver(monkeypatch):
    code, out = run(monkeypatch, '-f', 'json')
    assert code == 0
    rows = {row['Name']: row for row in json.loads(out)}
    assert {'dtn', 'glance', 'sharedfs', 'ssh'} <= set(rows)
    assert set(rows['glance']) == {'Name', 'Capabilities', 'Available',
                                   'Options', 'Description'}
    # real lists, not joined strings
    assert rows['glance']['Capabilities'] == ['streaming']
    assert rows['sharedfs']['Capabilities'] == ['handoff', 'resume',
                                                'staging']
    assert rows['ssh']['Capabilities'] == ['handoff', 'remote', 'staging']
    assert rows['dtn']['Capabilities'] == ['deltas', 'remote', 'resume',
                                           'staging', 'third-party']
    # each driver's `overcloud migrate` options, as real lists
    assert rows['glance']['Options'] == []
    assert rows['sharedfs']['Options'] == ['--sharedfs-dir']
    assert {'--dtn-source', '--dtn-dest', '--dtn-source-dir',
            '--dtn-dest-dir', '--dtn-mover'} <= set(rows['dtn']['Options'])
    assert all(o.startswith('--dtn-') for o in rows['dtn']['Options'])
    assert rows['dtn']['Available'] is True
    assert rows['sharedfs']['Available'] is True
    assert 'ssh' in rows['ssh']['Description']
    assert all(row['Description'] for row in rows.values())


def test_ssh_unavailable_without_an_ssh_client(monkeypatch, tmp_path):
    monkeypatch.setenv('PATH', str(tmp_path))
    code, out = run(monkeypatch, '-f', 'json')
    assert code == 0
    rows = {row['Name']: row for row in json.loads(out)}
    assert rows['ssh']['Available'] is False
    assert rows['glance']['Available'] is True


def test_value_format_and_column_selection(monkeypatch):
    code, out = run(monkeypatch, '-f', 'value', '-c', 'Name')
    assert code == 0
    assert {'dtn', 'glance', 'sharedfs', 'ssh'} <= set(out.split())
