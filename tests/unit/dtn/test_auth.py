import logging
import socket

import pytest
import requests

from overcloud_migrate.dtn import auth
from tests.unit.dtn import conftest


def _hello(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'hello']


@pytest.fixture
def served():
    servers = []

    def _serve(application):
        server, thread = conftest.serve(application)
        servers.append((server, thread))
        return 'http://127.0.0.1:%d' % server.server_address[1]

    yield _serve
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_no_token_is_401_json(served):
    url = served(auth.SharedTokenAuth(_hello, conftest.TOKEN))
    response = requests.get(url, timeout=5)
    assert response.status_code == 401
    assert response.json()['error']['code'] == 401
    assert 'X-Auth-Token' in response.json()['error']['message']


@pytest.mark.parametrize('token', [
    'wrong-token-0123456789abcdef', conftest.TOKEN[:-1],
    conftest.TOKEN + 'x', "' OR 1=1 --", '; rm -rf /', 'é' * 20])
def test_wrong_token_is_401(served, token):
    url = served(auth.SharedTokenAuth(_hello, conftest.TOKEN))
    response = requests.get(url, headers={
        'X-Auth-Token': token.encode('utf-8')}, timeout=5)
    assert response.status_code == 401
    assert 'not valid' in response.json()['error']['message']


def test_right_token_passes(served):
    url = served(auth.SharedTokenAuth(_hello, conftest.TOKEN))
    response = requests.get(url, headers={'X-Auth-Token': conftest.TOKEN},
                            timeout=5)
    assert response.status_code == 200
    assert response.text == 'hello'


def test_wrap_needs_exactly_one_mode():
    with pytest.raises(auth.AuthConfigError, match='exactly one'):
        auth.wrap(_hello)
    with pytest.raises(auth.AuthConfigError, match='exactly one'):
        auth.wrap(_hello, token=conftest.TOKEN, insecure_no_auth=True)


def test_insecure_mode_warns_loudly(served, caplog):
    caplog.set_level(logging.WARNING, logger='overcloud_migrate.dtn.auth')
    url = served(auth.wrap(_hello, insecure_no_auth=True))
    assert 'WITHOUT AUTHENTICATION' in caplog.text
    assert requests.get(url + '/log', timeout=5).status_code == 200
    assert 'unauthenticated request' in caplog.text
    assert 'GET /log' in caplog.text


def test_token_file_checks(tmp_path):
    with pytest.raises(auth.AuthConfigError, match='Cannot read'):
        auth.read_token_file(str(tmp_path / 'missing'))
    short = tmp_path / 'short'
    short.write_text('abc\n')
    with pytest.raises(auth.AuthConfigError, match='shorter than 16'):
        auth.read_token_file(str(short))
    good = tmp_path / 'good'
    good.write_text(conftest.TOKEN + '\n')
    assert auth.read_token_file(str(good)) == conftest.TOKEN


def test_keystone_mode_rejects_missing_tokens(served, tmp_path):
    """Real keystonemiddleware: no token never reaches the application."""
    conf = tmp_path / 'keystone.ini'
    conf.write_text(
        '[keystone_authtoken]\n'
        'www_authenticate_uri = http://127.0.0.1:%d/identity\n'
        'auth_url = http://127.0.0.1:%d/identity\n'
        'auth_type = password\nusername = dtn\npassword = x\n'
        'project_name = service\nuser_domain_name = Default\n'
        'project_domain_name = Default\n' % (_free_port(), _free_port()))
    application = auth.wrap(_hello, keystone_config=str(conf))
    assert application.mode == 'keystone'
    url = served(application)
    response = requests.get(url, timeout=10)
    assert response.status_code == 401
    assert response.text != 'hello'


def test_keystone_config_errors(tmp_path):
    with pytest.raises(auth.AuthConfigError, match='Cannot read'):
        auth.wrap(_hello, keystone_config=str(tmp_path / 'none.ini'))
    empty = tmp_path / 'empty.ini'
    empty.write_text('[other]\nx = 1\n')
    with pytest.raises(auth.AuthConfigError, match='keystone_authtoken'):
        auth.wrap(_hello, keystone_config=str(empty))


@pytest.mark.parametrize('environ, code', [
    ({}, 401),
    ({'HTTP_X_IDENTITY_STATUS': 'Invalid'}, 401),
    ({'HTTP_X_IDENTITY_STATUS': 'Confirmed', 'HTTP_X_ROLES': 'reader'}, 403),
    ({'HTTP_X_IDENTITY_STATUS': 'Confirmed',
      'HTTP_X_ROLES': 'reader,Admin'}, 200),
])
def test_keystone_role_check(environ, code):
    """The check after keystonemiddleware (its headers set by hand)."""
    statuses = []
    body = auth.KeystoneRoleCheck(_hello, ['admin'])(
        environ, lambda status, headers: statuses.append(status))
    assert int(statuses[0].split()[0]) == code
    assert (b''.join(body) == b'hello') == (code == 200)
