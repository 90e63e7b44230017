"""python-openstackclient plugin module for overcloud-migrate.

OSC finds this module through the ``openstack.cli.extension`` entry point
and its commands in the ``openstack.overcloud_migrate.v1`` group.
"""

import logging

from osc_lib import utils

LOG = logging.getLogger(__name__)

API_NAME = 'overcloud_migrate'
API_VERSION_OPTION = 'os_overcloud_migrate_api_version'
API_VERSIONS = {'1': 'overcloud_migrate.plugin.SourceClient'}
DEFAULT_API_VERSION = '1'


class SourceClient:
    """A thin facade over the source cloud's openstacksdk connection.

    The destination cloud is opened by the commands that need it (from
    ``--dest-cloud``); see :mod:`overcloud_migrate.clouds`.
    """

    def __init__(self, connection, region_name=None):
        self.connection = connection
        self.region_name = region_name


def make_client(instance):
    """Return the client for the source cloud (OSC calls this lazily)."""
    LOG.debug('overcloud_migrate: source cloud region %s',
              instance.region_name)
    return SourceClient(instance.sdk_connection, instance.region_name)


def build_option_parser(parser):
    """Add the plugin's global option to the openstack command."""
    parser.add_argument(
        '--os-overcloud-migrate-api-version',
        metavar='<overcloud-migrate-api-version>',
        default=utils.env('OS_OVERCLOUD_MIGRATE_API_VERSION',
                          default=DEFAULT_API_VERSION),
        help='overcloud-migrate command set version '
             '(Env: OS_OVERCLOUD_MIGRATE_API_VERSION, default: %s)'
             % DEFAULT_API_VERSION)
    return parser
