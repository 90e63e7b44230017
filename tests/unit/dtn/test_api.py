"""The DTN API through a real local server (see conftest.py)."""

import json
import os
import re
import time

import pytest
import requests

from overcloud_migrate.dtn import api
from overcloud_migrate.dtn import openapi
from overcloud_migrate.dtn import store as store_mod
from overcloud_migrate.dtn import transfers

SHELL = '; rm -rf /'
SQL = "' OR 1=1 --"


@pytest.fixture(autouse=True)
def nothing_outside_touched(dtn_tree):
    """After every test: the directory outside the exports is unchanged."""
    outside = dtn_tree[3]
    before = sorted(os.listdir(outside))
    yield
    assert sorted(os.listdir(outside)) == before
    assert (outside / 'secret.txt').read_text() == 'do not copy me\n'


def _error(response, code, *words):
    assert response.status_code == code, response.text
    assert response.headers['Content-Type'].startswith('application/json')
    error = response.json()['error']
    assert error['code'] == code
    for word in words:
        assert word in error['message'], error['message']
    return error['message']


def _files(directory):
    return sorted(os.listdir(directory))


ROUTES = [('GET', '/'), ('GET', '/log'), ('GET', '/ftp'), ('POST', '/ftp'),
          ('GET', '/info'), ('POST', '/transfer'), ('GET', '/v1/'),
          ('GET', '/v1/openapi.json'), ('GET', '/v1/nodes'),
          ('POST', '/v1/nodes'), ('GET', '/v1/nodes/a'),
          ('DELETE', '/v1/nodes/b'), ('GET', '/v1/listing'),
          ('GET', '/v1/transfers'), ('POST', '/v1/transfers'),
          ('GET', '/v1/transfers/' + '0' * 32),
          ('DELETE', '/v1/transfers/' + '0' * 32), ('GET', '/v1/log'),
          ('GET', '/no/such/route')]


@pytest.mark.parametrize('method, path', ROUTES)
def test_every_route_needs_the_token(dtn, method, path):
    response = requests.request(method, dtn.url + path, timeout=5,
                                data=b'{"Source": "x", "Dest": "y"}')
    _error(response, 401, 'X-Auth-Token')
    assert len(dtn.store.list_nodes()) == 2  # the DELETE did nothing


def test_openapi_matches_the_routes(dtn):
    app = api.create_app(dtn.store, transfers.TransferManager(dtn.store))
    routes = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith('/v1/'):
            continue
        path = re.sub(r'<(?:\w+:)?(\w+)>', r'{\1}', rule.rule)
        routes.setdefault(path, set()).update(
            m.lower() for m in rule.methods - {'HEAD', 'OPTIONS'})
    document = dtn.call('GET', '/v1/openapi.json').json()
    assert document == openapi.document()
    assert document['openapi'].startswith('3.')
    documented = {path: {m for m in ops if m in (
        'get', 'post', 'delete', 'put', 'patch')}
        for path, ops in document['paths'].items()}
    assert documented == routes


def test_seed_node_table(dtn):
    response = dtn.call('GET', '/')
    assert response.headers['Content-Type'].startswith('text/plain')
    lines = response.text.splitlines()
    assert lines[0].split() == ['id', 'name', 'address']
    assert [line.split()[1:] for line in lines[1:]] == [
        ['a', '127.0.0.1'], ['b', '127.0.0.1']]
    as_json = dtn.call('GET', '/', headers={'Accept': 'application/json'})
    assert [n['name'] for n in as_json.json()['nodes']] == ['a', 'b']


def test_node_register_show_delete(dtn):
    response = dtn.call('POST', '/v1/nodes', json={
        'name': 'seoul', 'address': '203.241.173.215', 'gridftp_port': 2811,
        'exports': {'data': '/export/data'}})
    assert response.status_code == 201
    assert response.json()['node']['local'] is False
    _error(dtn.call('POST', '/v1/nodes', json={
        'name': 'seoul', 'address': 'h', 'exports': {'d': '/d'}}), 409,
        'already registered')
    assert dtn.call('GET', '/v1/nodes/seoul').json()['node'][
        'exports'] == {'data': '/export/data'}
    assert dtn.call('DELETE', '/v1/nodes/seoul').status_code == 204
    _error(dtn.call('DELETE', '/v1/nodes/seoul'), 404, 'seoul')
    _error(dtn.call('GET', '/v1/nodes/seoul'), 404, 'seoul')


def test_this_dtn_cannot_be_deleted(dtn):
    _error(dtn.call('DELETE', '/v1/nodes/a'), 409, 'this DTN itself')


@pytest.mark.parametrize('body, words', [
    ({'name': SQL, 'address': 'h', 'exports': {'d': '/d'}}, 'node name'),
    ({'name': SHELL, 'address': 'h', 'exports': {'d': '/d'}}, 'node name'),
    ({'name': 'n', 'address': SHELL, 'exports': {'d': '/d'}}, 'address'),
    ({'name': 'n', 'address': SQL, 'exports': {'d': '/d'}}, 'address'),
    ({'name': 'n', 'address': 'h', 'exports': {'d': '/d/../etc'}}, '".."'),
    ({'name': 'n', 'address': 'h', 'exports': {'d': '/'}}, 'root'),
    ({'name': 'n', 'address': 'h', 'exports': {SQL: '/d'}}, 'export name'),
    ({'name': 'n', 'address': 'h', 'exports': {'d': SHELL}}, 'not absolute'),
    ({'name': 'n', 'address': 'h', 'exports': {}}, 'exports'),
    ({'name': 'n', 'address': 'h', 'exports': {'d': '/d'},
      'gridftp_port': '2811'}, 'gridftp_port'),
    ({'name': 'n', 'address': 'h', 'exports': {'d': '/d'},
      'gridftp_port': 70000}, 'gridftp_port'),
    ({'name': 'n', 'address': 'h', 'exports': {'d': '/d'},
      'gridftp_scheme': 'file'}, 'gridftp_scheme'),
    ({'name': 'n', 'address': 'h', 'exports': {'d': '/d'},
      'endpoint': 'http://x/$(reboot)'}, 'endpoint'),
    ({'name': 'n', 'address': 'h', 'exports': {'d': '/d'}, 'local': True},
     'Unknown fields'),
    ({'address': 'h', 'exports': {'d': '/d'}}, 'Missing fields'),
])
def test_bad_node_registrations(dtn, body, words):
    _error(dtn.call('POST', '/v1/nodes', json=body), 400, words)
    assert [n['name'] for n in dtn.store.list_nodes()] == ['a', 'b']


@pytest.mark.parametrize('data, code, words', [
    (b'{"source": ', 400, 'not valid JSON'),
    (b'\xff\xfe', 400, 'not valid JSON'),
    (b'[1, 2]', 400, 'JSON object'),
    (b'', 400, 'needs a JSON object'),
    (b'{"source": "' + b'x' * (70 * 1024) + b'"}', 413, '65536 bytes'),
])
def test_malformed_and_oversized_bodies(dtn, data, code, words):
    for path in ('/v1/transfers', '/v1/nodes', '/ftp'):
        response = dtn.call('POST', path, data=data,
                            headers={'Content-Type': 'application/json'})
        _error(response, code, words)


def test_unknown_route_and_method_are_json(dtn):
    _error(dtn.call('GET', '/v2/nodes'), 404, '/v2/nodes')
    _error(dtn.call('PUT', '/v1/nodes'), 405, 'PUT')


def test_listing_a_local_directory(dtn):
    answer = dtn.call('GET', '/v1/listing', params={
        'node': 'a', 'path': str(dtn.export_a)}).json()
    assert answer['entries'] == ['small.dat', 'sub/']
    assert answer['url'] == 'ftp://127.0.0.1:1%s/' % dtn.export_a


@pytest.mark.parametrize('params, code, words', [
    ({'node': 'a'}, 400, 'node and path'),
    ({'node': 'a', 'path': '/etc'}, 403, 'outside every export'),
    ({'node': 'a', 'path': 'EXPORT/../..'}, 400, '".."'),
    ({'node': 'a', 'path': 'EXPORT/missing'}, 400, 'does not exist'),
    ({'node': 'zz', 'path': '/x'}, 404, "'zz'"),
    ({'node': SQL, 'path': '/x'}, 400, 'no valid node'),
    ({'node': 'a', 'path': 'EXPORT/x', 'extra': '1'}, 400, 'node and path'),
])
def test_bad_listings(dtn, params, code, words):
    params = {k: v.replace('EXPORT', str(dtn.export_a))
              for k, v in params.items()}
    _error(dtn.call('GET', '/v1/listing', params=params), code, words)


def test_listing_an_unreachable_dtn_names_it(dtn):
    # node b's GridFTP server (127.0.0.1:2) does not answer
    response = dtn.call('GET', '/v1/listing', params={
        'node': 'b', 'path': str(dtn.export_b)})
    assert response.status_code in (502, 503)
    assert '127.0.0.1' in response.json()['error']['message']


def test_seed_listing_shape(dtn):
    body = {'Source': '127.0.0.1:1%s/' % dtn.export_a,
            'Dest': '127.0.0.1:1%s/sub/' % dtn.export_a}
    response = dtn.call('GET', '/ftp', json=body)
    assert response.status_code == 200, response.text
    assert response.text == (
        'ftp://127.0.0.1:1%s/\n  small.dat\n  sub/\n\n'
        'ftp://127.0.0.1:1%s/sub/\n\n' % (dtn.export_a, dtn.export_a))
    assert dtn.call('GET', '/info', json=body).text == response.text


def _start(dtn, source, dest, **extra):
    body = dict(source=source, dest=dest, **extra)
    return dtn.call('POST', '/v1/transfers', json=body)


def test_transfer_runs_in_the_background_and_logs(dtn):
    response = _start(dtn, 'a:%s/small.dat' % dtn.export_a,
                      'b:%s/copy.dat' % dtn.export_b, streams=2)
    assert response.status_code == 202
    row = response.json()['transfer']
    assert response.headers['Location'] == '/v1/transfers/' + row['id']
    assert row['bytes_total'] == 300 * 1024
    done = dtn.wait(row['id'])
    assert done['state'] == 'done', done
    assert done['bytes_done'] == 300 * 1024
    assert (dtn.export_b / 'copy.dat').read_bytes() == \
        (dtn.export_a / 'small.dat').read_bytes()
    assert _files(dtn.export_b) == ['copy.dat']
    [entry] = dtn.call('GET', '/v1/log', params={'node': 'b'}).json()['log']
    assert (entry['source'], entry['destination'], entry['file']) == (
        'a', 'b', '%s/copy.dat' % dtn.export_b)
    assert entry['mb'] == pytest.approx(0.307, abs=0.001)
    assert dtn.call('GET', '/v1/log', params={'file': 'nothere'}).json()[
        'log'] == []
    text = dtn.call('GET', '/log').text.splitlines()
    assert text[0].split() == ['date', 'source', 'destination', 'file',
                               'MB/s', 'MB', 'seconds']
    assert text[1].split()[1:4] == ['a', 'b', '%s/copy.dat' % dtn.export_b]
    listed = dtn.call('GET', '/v1/transfers').json()['transfers']
    assert [t['id'] for t in listed] == [row['id']]


def test_transfer_forms_dict_and_trailing_slash(dtn):
    response = _start(dtn, {'node': 'a', 'path': '%s/small.dat'
                            % dtn.export_a},
                      {'node': 'b', 'path': '%s/' % dtn.export_b})
    done = dtn.wait(response.json()['transfer']['id'])
    assert done['dest']['path'] == '%s/small.dat' % dtn.export_b
    assert _files(dtn.export_b) == ['small.dat']


def test_seed_post_transfer_answers_in_the_seed_shape(dtn):
    response = dtn.call('POST', '/ftp', json={
        'Source': '127.0.0.1:1%s/small.dat' % dtn.export_a,
        'Dest': '127.0.0.1:2%s/small.dat' % dtn.export_b})
    assert response.status_code == 200, response.text
    lines = response.text.splitlines()
    assert lines[0] == 'Source: ftp://127.0.0.1:1%s/' % dtn.export_a
    assert lines[1] == 'Dest:   ftp://127.0.0.1:2%s/' % dtn.export_b
    assert lines[2] == '  small.dat'
    assert re.match(r'^\s+307200 bytes\s+[\d.]+ MB/sec avg\s+[\d.]+ '
                    r'MB/sec inst$', lines[4])
    assert _files(dtn.export_b) == ['small.dat']


@pytest.mark.parametrize('source, dest, extra, code, words', [
    ('a:EA/../outside/secret.txt', 'b:EB/x', {}, 400, '".."'),
    ('a:EA/small.dat', 'b:/etc/cron.d/x', {}, 403, 'outside every export'),
    ('a:EA/small.dat', 'b:OUT/stolen', {}, 403, 'outside every export'),
    ('a:/etc/passwd', 'b:EB/passwd', {}, 403, 'outside every export'),
    ('a:EA/escape/secret.txt', 'b:EB/x', {}, 403, 'symlink'),
    ('a:EA/small.dat', 'zz:/x/y', {}, 404, "'zz'"),
    ('9.9.9.9:2811/x/y', 'b:EB/y', {}, 404, '9.9.9.9:2811'),
    ('a:EA/missing.dat', 'b:EB/y', {}, 404, 'does not exist'),
    ('a:EA/' + SHELL, 'b:EB/y', {}, 404, 'does not exist'),
    ('a:EA/small.dat', 'b:EB/' + SHELL, {'mover': SHELL}, 400, 'No mover'),
    ('a:EA/small.dat', 'b:EB/y', {'mover': SQL}, 400, 'No mover'),
    (SQL + ':/x', 'b:EB/y', {}, 400, 'neither'),
    ('a:EA/small.dat', SHELL, {}, 400, 'neither'),
    ('a:EA/small.dat', 'b:EB/y', {'streams': 0}, 400, 'streams'),
    ('a:EA/small.dat', 'b:EB/y', {'streams': '4; ls'}, 400, 'streams'),
    ('a:EA/small.dat', 'b:EB/y', {'streams': 1000}, 400, 'streams'),
    ('a:EA/small.dat', 'b:EB/y', {'verify': True}, 400, 'Unknown fields'),
    ('a:EA', 'b:EB/y', {}, 400, 'export root'),
    ('a:EA/small.dat', 'a:EA/small.dat', {}, 400, 'same file'),
    ('a:EA/small.dat', 'b:EB/y', {'mover': 'unavailable'}, 503,
     'no binary'),
    ({'node': 'a', 'path': 'EA/small.dat', 'x': 1}, 'b:EB/y', {}, 400,
     'unknown fields'),
    ('a:EA/small.dat\x00.txt', 'b:EB/y', {}, 400, 'NUL'),
])
def test_bad_transfers_are_refused_before_any_copy(dtn, source, dest, extra,
                                                   code, words):
    os.symlink(dtn.outside, dtn.export_a / 'escape')

    def fill(value):
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if not isinstance(value, str):
            return value
        return (value.replace('EA', str(dtn.export_a))
                .replace('EB', str(dtn.export_b))
                .replace('OUT', str(dtn.outside)))

    _error(_start(dtn, fill(source), fill(dest), **extra), code, words)
    assert _files(dtn.export_b) == []
    assert dtn.store.list_transfers() == []


def test_cancel_mid_way_leaves_no_destination_file(dtn):
    (dtn.export_a / 'big.dat').write_bytes(os.urandom(8 * 1024 * 1024))
    row = _start(dtn, 'a:%s/big.dat' % dtn.export_a,
                 'b:%s/big.dat' % dtn.export_b, mover='slowcopy').json()[
        'transfer']
    for _ in range(200):  # until it has really started copying
        current = dtn.call('GET', '/v1/transfers/' + row['id']).json()[
            'transfer']
        if current['bytes_done'] > 0:
            break
        time.sleep(0.05)
    assert current['state'] == 'running'
    response = dtn.call('DELETE', '/v1/transfers/' + row['id'])
    assert response.status_code == 202
    final = dtn.wait(row['id'])
    assert final['state'] == 'cancelled'
    assert 'cancelled' in final['error']
    assert 0 < final['bytes_done'] < 8 * 1024 * 1024
    assert _files(dtn.export_b) == []
    assert dtn.call('GET', '/v1/log').json()['log'] == []
    _error(dtn.call('DELETE', '/v1/transfers/' + row['id']), 409,
           'already finished')


def test_cancel_unknown_or_malformed_ids(dtn):
    _error(dtn.call('DELETE', '/v1/transfers/' + 'f' * 32), 404, 'f' * 32)
    _error(dtn.call('DELETE', '/v1/transfers/' + SQL), 400, '32 hex')
    _error(dtn.call('GET', '/v1/transfers/..%2F..%2Fetc'), 404)


def test_mover_failure_is_reported_and_leaves_nothing(dtn):
    # node b is remote: its missing directory is only found by the mover
    row = _start(dtn, 'a:%s/small.dat' % dtn.export_a,
                 'b:%s/no/such/dir/f' % dtn.export_b).json()['transfer']
    final = dtn.wait(row['id'])
    assert final['state'] == 'failed'
    assert 'No such file or directory' in final['error']
    assert _files(dtn.export_b) == []
    response = dtn.call('POST', '/ftp', json={
        'Source': '127.0.0.1:1%s/small.dat' % dtn.export_a,
        'Dest': '127.0.0.1:2%s/no/such/dir/f' % dtn.export_b})
    _error(response, 502, 'failed', 'No such file or directory')


@pytest.mark.parametrize('params, words', [
    ({'since': 'yesterday'}, 'ISO 8601'),
    ({'since': SQL}, 'ISO 8601'),
    ({'limit': '0'}, 'limit'),
    ({'limit': '1; DROP TABLE log'}, 'limit'),
    ({'node': SQL}, 'not valid'),
    ({'order': 'date'}, 'Unknown query'),
])
def test_bad_log_queries(dtn, params, words):
    _error(dtn.call('GET', '/v1/log', params=params), 400, words)


def test_log_file_filter_with_sql_is_just_text(dtn):
    dtn.store.add_log('a', 'b', '/x/vm.img', 10, 1.0)
    assert dtn.call('GET', '/v1/log', params={'file': SQL}).json()[
        'log'] == []
    assert len(dtn.call('GET', '/v1/log', params={'file': 'vm'}).json()[
        'log']) == 1
    since = dtn.call('GET', '/v1/log', params={
        'since': '2000-01-01T00:00:00+00:00'}).json()['log']
    assert len(since) == 1


@pytest.mark.parametrize('method', ['GET', 'POST'])
@pytest.mark.parametrize('source, dest, code, words', [
    (SQL, SHELL, 400, 'neither'),
    ('127.0.0.1:1' + SHELL, '127.0.0.1:2/x', 400, 'neither'),
    ('127.0.0.1:99999/x', '127.0.0.1:2/x', 400, 'invalid port'),
    ("127.0.0.1:1/x' OR 1=1 --", '127.0.0.1:2/x', 403, 'outside'),
    ('127.0.0.1:7/x/', '127.0.0.1:2/x/', 404, '127.0.0.1:7'),
])
def test_seed_fields_with_sql_and_shell(dtn, method, source, dest, code,
                                        words):
    response = dtn.call(method, '/ftp', json={'Source': source,
                                              'Dest': dest})
    _error(response, code, words)
    assert _files(dtn.export_b) == []


def test_seed_body_errors(dtn):
    _error(dtn.call('GET', '/ftp', json={'Source': 'x'}), 400, 'Dest')
    _error(dtn.call('GET', '/ftp', json={'Source': 1, 'Dest': 2}), 400,
           'IP:2811')
    _error(dtn.call('POST', '/ftp', json={
        'Source': '127.0.0.1:1/etc/passwd',
        'Dest': '127.0.0.1:2%s/p' % dtn.export_b}), 403, 'outside')


def test_state_survives_in_the_database(dtn):
    row = _start(dtn, 'a:%s/small.dat' % dtn.export_a,
                 'b:%s/c.dat' % dtn.export_b).json()['transfer']
    dtn.wait(row['id'])
    other = store_mod.Store(str(dtn.store.engine.url))
    try:
        assert other.get_transfer(row['id'])['state'] == 'done'
    finally:
        other.close()
    assert json.loads(json.dumps(dtn.call('GET', '/v1/').json()))[
        'local_node'] == 'a'
