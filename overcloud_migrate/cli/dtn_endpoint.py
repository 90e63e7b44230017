"""Find the DTN service and its token for the commands (and transports).

The endpoint comes from ``--dtn-endpoint``, else the environment variable
``OVERCLOUD_MIGRATE_DTN_ENDPOINT``, else the source cloud's catalog
(service type ``dtn``).  Only the last needs cloud credentials, so the
commands set ``auth_required = False`` and authenticate here on demand.
"""

import os

from keystoneauth1 import exceptions as ks_exc
import openstack
from openstack import exceptions as sdk_exc
from osc_lib import exceptions

from overcloud_migrate.dtn import client as dtn_client
from overcloud_migrate.transports import dtn as dtn_transport

ENDPOINT_ENV = 'OVERCLOUD_MIGRATE_DTN_ENDPOINT'
TOKEN_ENV = dtn_transport.TOKEN_ENV
SERVICE_TYPE = 'dtn'


def add_dtn_options(parser):
    group = parser.add_argument_group('DTN service')
    group.add_argument(
        '--dtn-endpoint', metavar='<url>',
        help='URL of the DTN service, e.g. http://dtn-a:22641 (Env: %s; '
             'default: the "%s" endpoint in the source cloud\'s catalog)'
             % (ENDPOINT_ENV, SERVICE_TYPE))
    group.add_argument(
        '--dtn-token-file', metavar='<file>',
        help='File holding the DTN service\'s shared token (Env: %s holds '
             'the token itself; default: the cloud\'s Keystone token when '
             'the endpoint comes from the catalog)' % TOKEN_ENV)
    group.add_argument(
        '--dtn-timeout', metavar='<seconds>', type=float, default=30.0,
        help='Timeout of each request to the DTN service (default: 30)')
    return parser


def _token(parsed_args):
    if parsed_args.dtn_token_file:
        try:
            return dtn_client.read_token_file(parsed_args.dtn_token_file)
        except dtn_client.DTNClientError as exc:
            raise exceptions.CommandError(str(exc))
    return os.environ.get(TOKEN_ENV) or None


def _from_catalog(app):
    """(endpoint, keystone token) of the source cloud's dtn service."""
    try:
        config = app.cloud_config.get_one(cloud=app.options.cloud,
                                          argparse=app.options, validate=True)
        connection = openstack.connection.Connection(config=config)
        endpoint = connection.endpoint_for(SERVICE_TYPE)
        token = connection.auth_token
    except (sdk_exc.SDKException, ks_exc.ClientException) as exc:
        raise exceptions.CommandError(
            'No DTN endpoint given and the source cloud cannot be asked for '
            'one (%s). Give --dtn-endpoint or set %s.' % (exc, ENDPOINT_ENV))
    if not endpoint:
        raise exceptions.CommandError(
            'The source cloud\'s catalog has no "%s" service. Give '
            '--dtn-endpoint or set %s.' % (SERVICE_TYPE, ENDPOINT_ENV))
    return endpoint, token


def make_client(app, parsed_args):
    """A :class:`DTNClient` for the command's options."""
    endpoint = parsed_args.dtn_endpoint or os.environ.get(ENDPOINT_ENV)
    token = _token(parsed_args)
    if not endpoint:
        endpoint, keystone_token = _from_catalog(app)
        token = token or keystone_token
    try:
        return dtn_client.DTNClient(endpoint, token=token,
                                    timeout=parsed_args.dtn_timeout)
    except dtn_client.DTNClientError as exc:
        raise exceptions.CommandError(str(exc))
