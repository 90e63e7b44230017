"""`openstack overcloud migration ...` in-process with no cloud configured.

`list` and `show` only read the local journal: they need no cloud at all.
`rollback` and `resume` reopen the clouds the journal recorded (no
--os-cloud needed; --os-cloud and --dest-cloud override) and say which on
stderr.  The clouds here point at a closed loopback port, so the test
proves which cloud was tried without any cloud running.
"""

import json
import socket

import pytest

from overcloud_migrate import journal as journal_mod
from tests.unit import test_plugin_cli

run = test_plugin_cli.run


def closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_cloud(tmp_path, monkeypatch):
    """No OS_* variable, no clouds.yaml anywhere; a journal in tmp_path."""
    for key in list(__import__('os').environ):
        if key.startswith('OS_') or key == 'OVERCLOUD_MIGRATE_DEST_CLOUD':
            monkeypatch.delenv(key)
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.setenv('XDG_CONFIG_HOME', str(tmp_path / 'config'))
    url = 'sqlite:///%s' % (tmp_path / 'journal.sqlite')
    monkeypatch.setenv(journal_mod.JOURNAL_URL_ENV, url)
    journal = journal_mod.Journal(url)
    migration = journal.start(
        'http://127.0.0.1:1|p-a|RegionOne', 'http://127.0.0.1:2|p-b|RegionOne',
        {'servers': []}, source_cloud='cloud-a', dest_cloud='cloud-b')
    journal.add_server(migration, 'v1', 'web', 0)
    journal.finish(migration, 'failed', 'interrupted')
    return tmp_path, migration


def clouds_yaml(tmp_path, monkeypatch, *names):
    port = closed_port()
    entries = ''.join(
        '  %s:\n    auth:\n      auth_url: http://127.0.0.1:%d/v3\n'
        '      username: u\n      password: p\n      project_name: p\n'
        '      user_domain_name: Default\n'
        '      project_domain_name: Default\n' % (name, port)
        for name in names)
    path = tmp_path / 'clouds.yaml'
    path.write_text('clouds:\n' + entries)
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(path))
    return port


def test_list_needs_no_cloud(no_cloud):
    _tmp, migration = no_cloud
    code, out, err = run(['overcloud', 'migration', 'list', '-f', 'json'])
    assert code == 0, err
    (row,) = json.loads(out)
    assert row['ID'] == migration and row['State'] == 'failed'
    assert 'auth-url' not in err


def test_show_needs_no_cloud(no_cloud):
    _tmp, migration = no_cloud
    code, out, err = run(['overcloud', 'migration', 'show', migration,
                          '-f', 'json'])
    assert code == 0, err
    shown = json.loads(out)
    assert shown['id'] == migration
    assert shown['source_cloud'] == 'cloud-a'
    assert [s['Name'] for s in shown['servers']] == ['web']


@pytest.mark.parametrize('action', ['rollback', 'resume'])
def test_the_recorded_source_cloud_is_used_and_named(no_cloud, monkeypatch,
                                                     action):
    tmp, migration = no_cloud
    port = clouds_yaml(tmp, monkeypatch, 'cloud-a', 'cloud-b')
    code, _out, err = run(['overcloud', 'migration', action, migration])
    assert code == 1
    assert "Source: cloud 'cloud-a' (recorded in the journal)" in err
    assert 'Missing value auth-url' not in err
    assert "cloud 'cloud-a' (http://127.0.0.1:%d/v3) cannot be reached" \
        % port in err, err


def test_os_cloud_overrides_the_recorded_source(no_cloud, monkeypatch):
    tmp, migration = no_cloud
    clouds_yaml(tmp, monkeypatch, 'cloud-a', 'other')
    code, _out, err = run(['--os-cloud', 'other', 'overcloud', 'migration',
                           'rollback', migration])
    assert code == 1
    assert "Source: cloud 'other' (--os-cloud)" in err
    assert "cloud 'other' (" in err and 'cannot be reached' in err


def test_a_recorded_cloud_missing_from_clouds_yaml_is_named(no_cloud):
    _tmp, migration = no_cloud
    code, _out, err = run(['overcloud', 'migration', 'rollback', migration])
    assert code == 1
    assert "The source cloud 'cloud-a' is not usable" in err, err
    assert 'Traceback' not in err


def test_abort_needs_no_cloud(no_cloud):
    tmp, _migration = no_cloud
    journal = journal_mod.Journal()
    running = journal.start('s', 'd', {'servers': []}, source_cloud='cloud-a',
                            dest_cloud='cloud-b')
    code, _out, err = run(['overcloud', 'migration', 'abort', running])
    assert code == 0, err
    assert journal.get(running).state == 'aborting'
