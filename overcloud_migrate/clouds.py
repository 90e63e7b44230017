"""The two clouds of a migration.

The source is the session python-openstackclient already holds (the usual
``--os-*`` options, ``OS_*`` variables or ``--os-cloud``).  The destination is
another entry of the same clouds.yaml/secure.yaml, named by ``--dest-cloud``
(or ``OVERCLOUD_MIGRATE_DEST_CLOUD``: the name must not start with ``OS_``,
because openstacksdk folds every ``OS_*`` variable into an implicit cloud).
"""

import dataclasses
import os

from keystoneauth1 import exceptions as ks_exc
import openstack
from openstack import exceptions as sdk_exc

from overcloud_migrate import exceptions

DEST_CLOUD_ENV = 'OVERCLOUD_MIGRATE_DEST_CLOUD'


class CloudError(exceptions.OvercloudMigrateError):
    """A cloud cannot be used; the message names the cloud and the cause."""


@dataclasses.dataclass(frozen=True)
class CloudIdentity:
    """What makes a cloud endpoint distinct: auth URL, project, region."""
    name: str
    auth_url: str
    project: str
    region: str

    def key(self):
        """A stable string for the journal (no secrets in it)."""
        return '%s|%s|%s' % (self.auth_url, self.project, self.region)

    def describe(self):
        return "cloud '%s' (%s)" % (self.name, self.auth_url)


def _normal_url(url):
    url = (url or '').rstrip('/')
    for suffix in ('/v3', '/v2.0'):
        if url.endswith(suffix):
            url = url[:-len(suffix)]
    return url


def identity_of(connection, name):
    """CloudIdentity of an authenticated openstacksdk connection."""
    auth = connection.config.config.get('auth', {})
    try:
        project = connection.current_project_id
    except Exception as exc:  # any failure here is a cloud problem
        raise connect_error(name, auth.get('auth_url'), exc)
    return CloudIdentity(name=name or connection.config.name or 'source',
                         auth_url=_normal_url(auth.get('auth_url')),
                         project=project or '',
                         region=connection.config.get_region_name() or '')


def connect_error(name, url, exc):
    """One clear sentence for a failure to reach or log in to a cloud."""
    where = "cloud '%s' (%s)" % (name, url or 'no auth URL')
    # openstacksdk wraps keystoneauth's errors: look at the cause too.
    cause = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        if isinstance(cause, ks_exc.ClientException):
            break
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ks_exc.ClientException):
        exc = cause
    if isinstance(exc, ks_exc.Unauthorized) or getattr(
            exc, 'http_status', None) == 401:
        return CloudError('The %s refused the credentials: check the user, '
                          'password and project in clouds.yaml.' % where)
    if isinstance(exc, (ks_exc.ConnectFailure, ks_exc.ConnectTimeout,
                        ks_exc.DiscoveryFailure)):
        return CloudError('The %s cannot be reached: %s' % (
            where, str(exc).splitlines()[0] if str(exc) else type(exc)))
    if isinstance(exc, ks_exc.MissingRequiredOptions):
        return CloudError('The %s is missing options: %s'
                          % (where, ', '.join(o.dest for o in exc.options)))
    return CloudError('The %s cannot be used: %s' % (where, exc))


def dest_cloud_name(option_value):
    return option_value or os.environ.get(DEST_CLOUD_ENV)


def open_destination(cloud_config, name, region=None, project=None):
    """Connect to the destination cloud and authenticate once.

    ``cloud_config`` is OSC's ``app.cloud_config`` (an openstacksdk config
    loader) so the same clouds.yaml, secure.yaml and OS_CLIENT_CONFIG_FILE
    apply to both clouds.
    """
    if not name:
        raise CloudError('No destination cloud: give --dest-cloud NAME or '
                         'set %s to a clouds.yaml entry.' % DEST_CLOUD_ENV)
    kwargs = {}
    if region:
        kwargs['region_name'] = region
    if project:
        kwargs['project_name'] = project
    try:
        config = cloud_config.get_one(cloud=name, **kwargs)
    except sdk_exc.ConfigException as exc:
        files = ', '.join(getattr(cloud_config, 'config_filename', None)
                          and [cloud_config.config_filename] or [])
        raise CloudError("The destination cloud '%s' is not usable: %s%s"
                         % (name, exc,
                            ' (clouds.yaml read: %s)' % files if files else ''))
    except ks_exc.MissingRequiredOptions as exc:
        raise connect_error(name, None, exc)
    connection = openstack.connection.Connection(config=config)
    auth_url = config.config.get('auth', {}).get('auth_url')
    try:
        connection.authorize()
    except Exception as exc:
        raise connect_error(name, auth_url, exc)
    return connection


def refuse_same_cloud(source, destination):
    """Raise when both identities are the same cloud, project and region."""
    if (source.auth_url == destination.auth_url
            and source.project == destination.project
            and source.region == destination.region):
        raise CloudError(
            'The source and the destination are the same cloud, project and '
            'region (%s, project %s, region %s): pick another --dest-cloud, '
            '--dest-project or --dest-region.'
            % (source.auth_url, source.project, source.region or '-'))


def handoff_identity(transport, directory):
    """The stand-in destination of ``migrate --handoff`` in the journal."""
    return CloudIdentity('handoff', 'handoff:%s:%s' % (transport, directory),
                         '', '')
