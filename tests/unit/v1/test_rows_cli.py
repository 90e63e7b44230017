"""The commands that print rows, in-process through OSC's shell, for those
that need no cloud (`migration list`, `migration show`) on a real journal
in tmp; `migrate`, `migrate --handoff`, `migration resume` need clouds and
are run by the functional tests."""

import io
import json
import os

from openstackclient import shell
import pytest

from overcloud_migrate import journal as journal_mod
from overcloud_migrate.v1 import constants
from tests.unit.v1 import test_columns


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
    code = shell.OpenStackShell().run(['overcloud'] + list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def journal(tmp_path):
    url = 'sqlite:///%s' % (tmp_path / 'journal.sqlite')
    journal = journal_mod.Journal(url)
    migration_id, _record = test_columns._finished_server(journal)
    return url, migration_id


def test_migration_list_json(monkeypatch, journal):
    url, migration_id = journal
    code, out, err = run(monkeypatch, 'migration', 'list', '--journal-url',
                         url, '-f', 'json')
    assert code == 0, err
    [row] = json.loads(out)
    assert list(row) == list(constants.MIGRATION_COLUMNS)
    assert row['ID'] == migration_id and row['Servers'] == 1


def test_migration_show_json_lists_servers_by_column(monkeypatch, journal):
    url, migration_id = journal
    code, out, err = run(monkeypatch, 'migration', 'show', migration_id,
                         '--journal-url', url, '-f', 'json')
    assert code == 0, err
    [server] = json.loads(out)['servers']
    assert list(server) == list(constants.MIGRATE_COLUMNS[1:])
    assert server['Destination ID'] == 'did-1'
    assert server['Bytes'] == 8_388_608
    assert list(server['Phases']) == ['stop', 'snapshot', 'transfer', 'boot',
                                      'verify']


def test_migration_show_table(monkeypatch, journal):
    url, migration_id = journal
    code, out, err = run(monkeypatch, 'migration', 'show', migration_id,
                         '--journal-url', url)
    assert code == 0, err
    assert migration_id in out and 'did-1' in out
