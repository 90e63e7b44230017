"""The DTN service against hostile input (issue 15, section 2)."""

import json
import logging
import random
import socket
import threading
import time
from wsgiref import simple_server

import pytest

from overcloud_migrate.dtn import api
from overcloud_migrate.dtn import auth
from overcloud_migrate.dtn import checks
from overcloud_migrate.dtn import service
from overcloud_migrate.dtn import store as store_mod
from overcloud_migrate.dtn import transfers
from overcloud_migrate.dtn.movers import gridftp

from tests.unit.dtn import conftest


@pytest.fixture
def app_client(dtn_tree):
    """A test client on the real app, nodes allowed only on 127.0.0.0/8."""
    root, export_a, export_b, _ = dtn_tree
    store = store_mod.Store('sqlite:///%s' % (root / 'h.sqlite'))
    store.upsert_local_node('a', '127.0.0.1', 1, 'ftp', None,
                            {'data': str(export_a)})
    store.add_node('b', '127.0.0.1', gridftp_port=2,
                   exports={'data': str(export_b)})
    manager = transfers.TransferManager(store)
    movers = transfers.MoverRegistry({
        'localcopy': conftest.LocalCopyMover(),
        'gridftp': gridftp.GridftpMover(binary='/bin/true')})
    app = api.create_app(store, manager, api.Config(
        local_node='a', default_mover='localcopy', movers=movers,
        listing_timeout=5,
        allowed_networks=checks.NetworkAllowList(['127.0.0.0/8', '::1/128'])))
    app.testing = False
    client = auth.SharedTokenAuth(app, conftest.TOKEN)
    from werkzeug.test import Client
    yield Client(client), export_a, store
    manager.shutdown()
    store.close()


HEADERS = {'X-Auth-Token': conftest.TOKEN}


def _node(address, name='n1'):
    return {'name': name, 'address': address, 'exports': {'d': '/srv/d'}}


def test_node_outside_allowed_networks_refused(app_client):
    client, _, _ = app_client
    resp = client.post('/v1/nodes', json=_node('10.1.2.3'), headers=HEADERS)
    assert resp.status_code == 403
    assert 'allow-network' in resp.get_json()['error']['message']
    resp = client.post('/v1/nodes', json=_node('127.0.0.9'), headers=HEADERS)
    assert resp.status_code == 201


def test_transfer_to_node_moved_outside_refused(app_client):
    client, export_a, store = app_client
    store.add_node('far', '192.0.2.7', exports={'d': '/srv/d'})
    (export_a / 'f').write_bytes(b'x')
    resp = client.post('/v1/transfers', headers=HEADERS, json={
        'source': 'a:%s/f' % export_a, 'dest': 'far:/srv/d/f'})
    assert resp.status_code == 403


@pytest.mark.parametrize('address', [
    'fe80::1%eth0\r\n9 fake 1.2.3.4', 'fe80::1%' + 'x' * 16, '::1%a b',
    '127.0.0.1%eth0'])
def test_ipv6_scope_id_validated(app_client, address):
    client, _, _ = app_client
    resp = client.post('/v1/nodes', json=_node(address), headers=HEADERS)
    assert resp.status_code == 400, resp.get_data()


def test_ipv6_scope_id_accepted():
    assert checks.check_address('fe80::1%eth0') == 'fe80::1%eth0'


def test_ipv6_urls_bracketed():
    assert gridftp.url('ftp', '::1', 2811, '/d/f') == 'ftp://[::1]:2811/d/f'
    assert gridftp.url('ftp', 'fe80::1%eth0', 2811, '/d/') == \
        'ftp://[fe80::1%25eth0]:2811/d/'
    assert gridftp.url('ftp', '10.0.0.1', 2811, '/d') == 'ftp://10.0.0.1:2811/d'


def test_streams_null_refused(app_client):
    client, export_a, _ = app_client
    (export_a / 'f').write_bytes(b'x')
    resp = client.post('/v1/transfers', headers=HEADERS, json={
        'source': 'a:%s/f' % export_a, 'dest': 'b:/x/f', 'streams': None})
    assert resp.status_code == 400


def test_deep_json_refused(app_client):
    client, _, _ = app_client
    body = '[' * 1000 + ']' * 1000
    resp = client.post('/v1/nodes', data=body, headers=HEADERS,
                       content_type='application/json')
    assert resp.status_code == 400
    body = '{"name": ' + '{"a": ' * 1000 + '1' + '}' * 1001
    resp = client.post('/v1/nodes', data=body, headers=HEADERS,
                       content_type='application/json')
    assert resp.status_code == 400


@pytest.mark.parametrize('field', ['address', 'name', 'path'])
def test_lone_surrogate_refused(app_client, field):
    client, export_a, _ = app_client
    if field == 'path':
        body = '{"source": "a:%s/\\ud800", "dest": "b:/x/"}' % export_a
        url = '/v1/transfers'
    else:
        node = _node('127.0.0.2')
        node[field] = '@@SUR@@'
        body = json.dumps(node).replace('@@SUR@@', '\\ud800')
        url = '/v1/nodes'
    resp = client.post(url, data=body, headers=HEADERS,
                       content_type='application/json')
    assert resp.status_code == 400, resp.get_data()


def _fuzz_value(rng, depth=0):
    choices = [None, True, False, 0, -1, 1, 2 ** 70, 1.5, '', 'a', '\ud800',
               '\udfff x', '日本.txt', '../../etc/passwd', '/', '%00',
               'a:/x', '127.0.0.1:2/x', '\r\n', 'x' * 5000, [], {}]
    if depth < 3 and rng.random() < 0.3:
        if rng.random() < 0.5:
            return [_fuzz_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
        return {rng.choice(['node', 'path', 'name', 'x']):
                _fuzz_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return rng.choice(choices)


FIELDS = {
    '/v1/nodes': ['name', 'address', 'gridftp_port', 'gridftp_scheme',
                  'data_port', 'endpoint', 'exports'],
    '/v1/transfers': ['source', 'dest', 'mover', 'streams'],
    '/ftp': ['Source', 'Dest'],
}


def _fuzz_request(rng, export_a):
    kind = rng.random()
    if kind < 0.1:
        return 'POST', '/v1/nodes', '[' * rng.randint(30, 3000)
    if kind < 0.2:
        url = rng.choice(list(FIELDS))
        return 'POST', url, '{"%s": "\\ud800"}' % rng.choice(FIELDS[url])
    if kind < 0.3:
        path = rng.choice(['/v1/nodes/%ED%A0%80', '/v1/transfers/' + 'a' * 32,
                           '/v1/listing?node=a&path=%ED%A0%80',
                           '/v1/log?since=%FF', '/v1/log?limit=-1',
                           '/v1/nodes/' + '.' * 70, '/v1/listing?node=b'])
        return rng.choice(['GET', 'DELETE']), path, None
    url = rng.choice(list(FIELDS))
    body = {key: _fuzz_value(rng) for key in FIELDS[url]
            if rng.random() < 0.7}
    if url != '/v1/nodes' and rng.random() < 0.5:
        body['source'] = 'a:%s/f' % export_a
        body['Source'] = '127.0.0.1:1%s/f' % export_a
    return rng.choice(['POST', 'POST', 'GET']), url, json.dumps(body)


def test_fuzz_no_server_errors(app_client):
    """A bounded, seeded fuzz pass: no answer may be a 5xx of ours."""
    client, export_a, _ = app_client
    (export_a / 'f').write_bytes(b'fuzz')
    rng = random.Random(15)
    errors = []
    for _ in range(600):
        method, url, body = _fuzz_request(rng, export_a)
        resp = client.open(url, method=method, data=body, headers=HEADERS,
                           content_type='application/json')
        # 502/503: a peer GridFTP that is not there (a fact, not a crash)
        if resp.status_code >= 500 and resp.status_code not in (502, 503):
            errors.append((method, url, body and body[:80],
                           resp.status_code, resp.get_data()[:200]))
    assert not errors


# -- the HTTP server --------------------------------------------------------

@pytest.fixture
def tight_server(dtn):
    """A second server on the same app: short timeout, two connections."""
    class Server(service.ThreadingWSGIServer):
        request_timeout = 0.3
        max_connections = 2

    def app(environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [environ.get('HTTP_X_AUTH_TOKEN', '-').encode()]

    server = simple_server.make_server('127.0.0.1', 0, app,
                                       server_class=Server,
                                       handler_class=service._Handler)
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_half_sent_request_times_out(tight_server):
    sock = socket.create_connection(('127.0.0.1', tight_server))
    sock.settimeout(5)
    sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n')   # never finished
    started = time.monotonic()
    while sock.recv(4096):
        pass
    assert time.monotonic() - started < 3
    sock.close()


def test_connection_cap(tight_server):
    idle = [socket.create_connection(('127.0.0.1', tight_server))
            for _ in range(2)]
    time.sleep(0.05)
    extra = socket.create_connection(('127.0.0.1', tight_server))
    extra.settimeout(2)
    assert extra.recv(100).startswith(b'HTTP/1.0 503')
    for sock in idle + [extra]:
        sock.close()


def _raw_get(port, headers):
    sock = socket.create_connection(('127.0.0.1', port), timeout=5)
    sock.sendall(b'GET / HTTP/1.0\r\n' + headers + b'\r\n')
    data = b''
    while True:
        piece = sock.recv(4096)
        if not piece:
            break
        data += piece
    sock.close()
    return data


def test_underscore_header_not_taken_for_token(tight_server, dtn):
    assert _raw_get(tight_server, b'X-Auth-Token: abc\r\n').endswith(b'abc')
    assert _raw_get(tight_server, b'X_Auth_Token: abc\r\n').endswith(b'-')
    resp = dtn.session.get(dtn.url + '/v1/', headers={
        'X-Auth-Token': None, 'X_Auth_Token': dtn.token}, timeout=5)
    assert resp.status_code == 401


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_query_token_never_logged(dtn):
    logger = logging.getLogger('overcloud_migrate.dtn.service')
    handler = _Lines()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        dtn.call('GET', '/v1/?token=s3cret-in-query&X-Auth-Token=s3cret2')
        deadline = time.monotonic() + 5   # logged after the answer is sent
        while not handler.lines and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    text = '\n'.join(handler.lines)
    assert 's3cret' not in text
    assert '/v1/' in text


# -- names GridFTP cannot carry ---------------------------------------------

@pytest.mark.parametrize('name', ['日本.txt', 'é', '%2e%2e', '.%C3%A9.',
                                  '%252e%252e', 'a%2Fb', 'x%0Ay'])
def test_gridftp_transfer_of_names_it_cannot_carry_refused(app_client, name,
                                                           dtn_tree):
    client, export_a, _ = app_client
    (export_a / name).write_bytes(b'x')
    resp = client.post('/v1/transfers', headers=HEADERS, json={
        'source': 'a:%s/%s' % (export_a, name),
        'dest': 'b:%s/' % dtn_tree[2], 'mover': 'gridftp'})
    assert resp.status_code == 400, resp.get_data()
    assert 'GridFTP' in resp.get_json()['error']['message']


def test_gridftp_carries_a_harmless_percent():
    assert gridftp.check_path('/d/a%41b c.img') == '/d/a%41b c.img'


def test_gridftp_listing_of_an_encoded_path_refused(app_client, dtn_tree):
    client, _, _ = app_client
    export_b = dtn_tree[2]
    resp = client.get('/v1/listing', headers=HEADERS, query_string={
        'node': 'b', 'path': '%s/.%%C3%%A9./' % export_b})
    assert resp.status_code == 400, resp.get_data()


def test_other_movers_carry_non_ascii_names(app_client):
    client, export_a, _ = app_client
    (export_a / '日本.txt').write_bytes(b'x')
    resp = client.post('/v1/transfers', headers=HEADERS, json={
        'source': 'a:%s/日本.txt' % export_a, 'dest': 'a:%s/コピー.txt'
        % export_a, 'mover': 'localcopy'})
    assert resp.status_code == 202


def test_listing_does_not_follow_a_directory_swapped_for_a_symlink(
        app_client, dtn_tree, monkeypatch):
    client, export_a, _ = app_client
    outside = dtn_tree[3]
    (export_a / 'sub2').mkdir()
    real = api.paths.confine_directory

    def confine_then_swap(path, exports, local=False):
        confined = real(path, exports, local=local)
        (export_a / 'sub2').rmdir()
        (export_a / 'sub2').symlink_to(outside)
        return confined

    monkeypatch.setattr(api.paths, 'confine_directory', confine_then_swap)
    resp = client.get('/v1/listing', headers=HEADERS, query_string={
        'node': 'a', 'path': '%s/sub2' % export_a})
    assert b'secret.txt' not in resp.get_data()
    assert resp.status_code in (403, 404)
