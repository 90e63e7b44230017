"""``openstack overcloud dtn ...`` in-process against the real service.

No cloud credentials anywhere: the commands must work from the endpoint
alone (auth_required = False).
"""

import json
import os

import pytest
from openstackclient import shell

from overcloud_migrate.cli import dtn_endpoint


@pytest.fixture(autouse=True)
def no_cloud(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith('OS_') or key.startswith('OVERCLOUD_MIGRATE_DTN'):
            monkeypatch.delenv(key)
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(tmp_path / 'none.yaml'))


@pytest.fixture
def token_file(dtn, tmp_path):
    path = tmp_path / 'dtn-token'
    path.write_text(dtn.token + '\n')
    return str(path)


def run(capsys, *argv):
    code = shell.OpenStackShell().run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, '-f', 'json')
    assert code == 0, err
    return json.loads(out), err


def test_node_commands(capsys, dtn, token_file):
    opts = ['--dtn-endpoint', dtn.url, '--dtn-token-file', token_file]
    nodes, _ = run_json(capsys, 'overcloud', 'dtn', 'node', 'list', *opts)
    assert [n['Name'] for n in nodes] == ['a', 'b']
    assert nodes[0]['Exports'] == {'data': str(dtn.export_a)}
    assert nodes[0]['GridFTP'] == 'ftp://127.0.0.1:1'
    added, _ = run_json(capsys, 'overcloud', 'dtn', 'node', 'add', 'seoul',
                        '--address', '203.241.173.215', '--export',
                        'data=/export/data', *opts)
    assert added['Name'] == 'seoul' and added['Local'] is False
    code, out, err = run(capsys, 'overcloud', 'dtn', 'node', 'delete',
                         'seoul', 'nope', *opts)
    assert code == 1
    assert out == ''
    assert '1 of 2 DTN nodes could not be deleted' in err
    assert [n['name'] for n in dtn.store.list_nodes()] == ['a', 'b']


def test_transfer_wait_list_and_log(capsys, dtn, token_file, monkeypatch):
    monkeypatch.setenv(dtn_endpoint.ENDPOINT_ENV, dtn.url)
    monkeypatch.setenv(dtn_endpoint.TOKEN_ENV, dtn.token)
    row, err = run_json(capsys, 'overcloud', 'dtn', 'transfer',
                        'a:%s/small.dat' % dtn.export_a,
                        'b:%s/' % dtn.export_b, '--streams', '2', '--wait',
                        '--timeout', '20')
    assert row['State'] == 'done'
    assert row['Bytes Done'] == 300 * 1024
    assert 'Waiting for transfer' in err
    assert (dtn.export_b / 'small.dat').read_bytes() == \
        (dtn.export_a / 'small.dat').read_bytes()
    listing, _ = run_json(capsys, 'overcloud', 'dtn', 'list',
                          'a:%s/' % dtn.export_a, '127.0.0.1:1%s/sub/'
                          % dtn.export_a)
    assert [(r['Name'], r['Type']) for r in listing] == [
        ('small.dat', 'file'), ('sub', 'directory')]
    log, _ = run_json(capsys, 'overcloud', 'dtn', 'log', '--node', 'b')
    assert [r['File'] for r in log] == ['%s/small.dat' % dtn.export_b]


@pytest.mark.parametrize('argv, words', [
    (['transfer', 'nowhere', 'b:/x'], 'neither NODE:/path'),
    (['transfer', 'a:/x/../y', 'b:/x'], '".."'),
    (['transfer', 'a:/x', 'b:/y', '--streams', '0'], '--streams'),
    (['transfer', 'a:/x', 'b:/y', '--timeout', '-1'], '--timeout'),
    (['node', 'add', 'n', '--address', 'h'], '--export'),
    (['log', '--limit', '0'], '--limit'),
])
def test_refused_before_any_call(capsys, argv, words):
    # the endpoint is closed: these must fail before reaching it
    code, out, err = run(capsys, 'overcloud', 'dtn', *argv,
                         '--dtn-endpoint', 'http://127.0.0.1:9')
    assert code == 1 and out == ''
    assert words in err


def test_failed_wait_exits_non_zero(capsys, dtn, token_file):
    code, out, err = run(capsys, 'overcloud', 'dtn', 'transfer',
                         'a:%s/small.dat' % dtn.export_a,
                         'b:%s/missing/f' % dtn.export_b, '--wait',
                         '--dtn-endpoint', dtn.url,
                         '--dtn-token-file', token_file)
    assert code == 1 and out == ''
    assert 'failed' in err and 'No such file or directory' in err


def test_server_errors_become_sentences(capsys, dtn, token_file):
    code, out, err = run(capsys, 'overcloud', 'dtn', 'transfer',
                         'a:/etc/passwd', 'b:%s/p' % dtn.export_b,
                         '--dtn-endpoint', dtn.url,
                         '--dtn-token-file', token_file)
    assert code == 1 and out == ''
    assert 'answered 403' in err and 'outside every export' in err


def test_no_endpoint_and_no_cloud_says_what_to_do(capsys):
    code, out, err = run(capsys, 'overcloud', 'dtn', 'node', 'list')
    assert code == 1 and out == ''
    assert '--dtn-endpoint' in err and dtn_endpoint.ENDPOINT_ENV in err


def test_unreadable_token_file(capsys, tmp_path):
    code, out, err = run(capsys, 'overcloud', 'dtn', 'log',
                         '--dtn-endpoint', 'http://127.0.0.1:9',
                         '--dtn-token-file', str(tmp_path / 'missing'))
    assert code == 1 and 'Cannot read the DTN token file' in err
