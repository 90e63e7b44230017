"""Authentication of every request to the DTN service (WSGI middleware).

Three modes, chosen when the service starts:

* ``keystone``: Keystone tokens validated by keystonemiddleware (imported
  only in this mode, so a DTN without it still runs the other modes); the
  token's roles must include one of the allowed roles.
* ``token``: one shared secret read from a file, sent by clients in the
  ``X-Auth-Token`` header and compared in constant time.
* ``none``: only with ``--insecure-no-auth``; logged as a warning at start
  and on every request.
"""

import configparser
import hmac
import json
import logging

from overcloud_migrate.dtn import constants
from overcloud_migrate.exceptions import OvercloudMigrateError

LOG = logging.getLogger(__name__)

HEADER = constants.TOKEN_HEADER
_ENVIRON_KEY = 'HTTP_X_AUTH_TOKEN'


class AuthConfigError(OvercloudMigrateError, ValueError):
    """The authentication settings are unusable."""


def read_token_file(path):
    """The shared token: the file's first line, at least 16 characters."""
    try:
        with open(path, encoding='utf-8') as handle:
            token = handle.readline().strip()
    except OSError as exc:
        raise AuthConfigError('Cannot read the token file %s: %s'
                              % (path, exc.strerror or exc))
    if len(token) < 16:
        raise AuthConfigError('The token in %s is shorter than 16 characters; '
                              'generate one with: python3 -c "import secrets; '
                              'print(secrets.token_urlsafe(32))"' % path)
    return token


def _deny(start_response, message, code=401):
    body = json.dumps({'error': {'code': code, 'message': message}}).encode()
    headers = [('Content-Type', 'application/json'),
               ('Content-Length', str(len(body)))]
    if code == 401:
        headers.append(('WWW-Authenticate', 'X-Auth-Token'))
    start_response('%d %s' % (code, 'Unauthorized' if code == 401
                              else 'Forbidden'), headers)
    return [body]


class SharedTokenAuth:
    """Require ``X-Auth-Token`` to equal the shared token."""

    mode = 'token'

    def __init__(self, app, token):
        if not token:
            raise AuthConfigError('The shared token is empty.')
        self.app = app
        self._token = token.encode('utf-8')

    def __call__(self, environ, start_response):
        given = environ.get(_ENVIRON_KEY)
        if not given:
            return _deny(start_response, 'This DTN service needs a token in '
                         'the %s header.' % HEADER)
        if not hmac.compare_digest(given.encode('utf-8', 'replace'),
                                   self._token):
            LOG.warning('rejected a wrong token from %s',
                        environ.get('REMOTE_ADDR', '?'))
            return _deny(start_response, 'The token in the %s header is not '
                         'valid for this DTN service.' % HEADER)
        return self.app(environ, start_response)


class KeystoneRoleCheck:
    """After keystonemiddleware: a confirmed identity with an allowed role."""

    def __init__(self, app, roles):
        self.app = app
        self.roles = {role.lower() for role in roles}

    def __call__(self, environ, start_response):
        if environ.get('HTTP_X_IDENTITY_STATUS') != 'Confirmed':
            return _deny(start_response, 'This DTN service needs a valid '
                         'Keystone token in the %s header.' % HEADER)
        roles = {role.strip().lower() for role in
                 environ.get('HTTP_X_ROLES', '').split(',') if role.strip()}
        if not roles & self.roles:
            return _deny(start_response, 'The Keystone token has none of the '
                         'roles this DTN service accepts (%s).'
                         % ', '.join(sorted(self.roles)), code=403)
        return self.app(environ, start_response)


def keystone_middleware(app, config_file, roles=('admin',)):
    """Wrap ``app`` with keystonemiddleware using a ``[keystone_authtoken]``
    section of ``config_file``."""
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(config_file):
        raise AuthConfigError('Cannot read the Keystone settings file %s.'
                              % config_file)
    if not parser.has_section('keystone_authtoken'):
        raise AuthConfigError('%s has no [keystone_authtoken] section.'
                              % config_file)
    conf = dict(parser.items('keystone_authtoken'))
    conf['delay_auth_decision'] = 'false'
    try:
        from keystonemiddleware import auth_token
    except ImportError:
        raise AuthConfigError('Keystone authentication needs the Python '
                              'package keystonemiddleware on this DTN.')
    inner = KeystoneRoleCheck(app, roles)
    wrapped = auth_token.AuthProtocol(inner, conf)
    wrapped.mode = 'keystone'
    return wrapped


class NoAuth:
    """Pass everything through, with a warning per request."""

    mode = 'none'

    def __init__(self, app):
        self.app = app
        LOG.warning('THE DTN SERVICE RUNS WITHOUT AUTHENTICATION '
                    '(--insecure-no-auth): anyone who reaches this port can '
                    'move files between the exports.')

    def __call__(self, environ, start_response):
        LOG.warning('unauthenticated request (--insecure-no-auth): %s %s',
                    environ.get('REQUEST_METHOD'), environ.get('PATH_INFO'))
        return self.app(environ, start_response)


def wrap(app, token=None, keystone_config=None, keystone_roles=('admin',),
         insecure_no_auth=False):
    """Choose the authentication mode; refuse to run with none chosen."""
    chosen = [bool(token), bool(keystone_config), bool(insecure_no_auth)]
    if sum(chosen) != 1:
        raise AuthConfigError(
            'Choose exactly one of --token-file, --keystone-config or '
            '--insecure-no-auth (the DTN service never runs open by '
            'default).')
    if keystone_config:
        return keystone_middleware(app, keystone_config, keystone_roles)
    if token:
        return SharedTokenAuth(app, token)
    return NoAuth(app)
