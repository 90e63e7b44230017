"""Configuration files of one devcloud cloud.

Each function returns {section: {option: value}}; :func:`write_cloud`
renders them as INI files under the cloud's etc/ directory.  The services
find them through their OS_*_CONFIG_* environment variables (see
:mod:`overcloud_devcloud.services`).
"""

import shutil

from overcloud_devcloud import layout as layout_mod

DB_SERVICES = ('keystone', 'glance', 'placement', 'nova_api', 'nova_cell0',
               'nova', 'neutron', 'cinder')
SERVICE_USERS = ('glance', 'placement', 'nova', 'neutron', 'cinder')


def db_name(cloud, service):
    """Database name of ``service`` in ``cloud`` ('devcloud-a' -> 'a_nova')."""
    return '%s_%s' % (cloud.rsplit('-', 1)[1], service)


def db_url(layout, secrets, cloud, service):
    return 'mysql+pymysql://devcloud:%s@%s:%d/%s?charset=utf8mb4' % (
        secrets['mariadb'], layout_mod.HOST, layout.ports.mariadb,
        db_name(cloud, service))


def transport_url(layout, secrets, cloud):
    return 'rabbit://devcloud:%s@%s:%d/%s' % (
        secrets['rabbitmq'], layout_mod.HOST, layout.ports.amqp, cloud)


def _auth_section(layout, secrets, cloud, user):
    """keystoneauth options for service user ``user``."""
    return {
        'auth_type': 'password',
        'auth_url': layout.url(cloud, 'keystone'),
        'username': user,
        'password': secrets[cloud]['service'],
        'user_domain_name': 'Default',
        'project_name': 'service',
        'project_domain_name': 'Default',
        'region_name': 'RegionOne',
    }


def _authtoken(layout, secrets, cloud, user):
    section = _auth_section(layout, secrets, cloud, user)
    section['www_authenticate_uri'] = layout.url(cloud, 'keystone')
    section['service_token_roles_required'] = True
    return section


# The bed starts the clouds while RabbitMQ boots (see bed.Bed._bring_up): a
# service that finds no broker retries every second, not after 1, 3, 5, 7 ...
# seconds (oslo.messaging's default backoff), which could leave it waiting
# several seconds after the broker answers.
RABBIT = {'rabbit_interval_max': 1}


def _common(layout, cloud, name):
    return {
        'debug': False,
        'log_file': str(layout.logfile('%s-%s' % (cloud, name))),
        'use_stderr': False,
    }


def keystone(layout, secrets, cloud):
    keys = layout.cloud_dir(cloud) / 'keys'
    return {
        'DEFAULT': _common(layout, cloud, 'keystone'),
        'database': {'connection': db_url(layout, secrets, cloud, 'keystone')},
        'token': {'provider': 'fernet'},
        'fernet_tokens': {'key_repository': str(keys / 'fernet')},
        'fernet_receipts': {'key_repository': str(keys / 'receipts')},
        'credential': {'key_repository': str(keys / 'credential')},
        # Keystone runs as one process: an in-process cache is coherent, and
        # without it every token validation (each service validates each
        # new user and service token) rebuilds roles and catalog from the
        # database; on a loaded bed those validations were most of a boot.
        'cache': {'enabled': True, 'backend': 'oslo_cache.dict',
                  'expiration_time': 600},
        # bcrypt's minimum cost: a test bed needs fast logins, not strength.
        'identity': {'password_hash_rounds': 4},
    }


def glance(layout, secrets, cloud):
    base = layout.cloud_dir(cloud) / 'glance'
    url = layout.url(cloud, 'glance')
    common = _common(layout, cloud, 'glance')
    common.update({
        'enabled_backends': 'fs:file',
        'worker_self_reference_url': url,
        'image_cache_dir': str(base / 'cache'),
    })
    return {
        'DEFAULT': common,
        'database': {'connection': db_url(layout, secrets, cloud, 'glance')},
        'glance_store': {'default_backend': 'fs'},
        'fs': {'filesystem_store_datadir': str(layout.image_store(cloud))},
        'os_glance_staging_store': {
            'filesystem_store_datadir': str(base / 'staging')},
        'os_glance_tasks_store': {
            'filesystem_store_datadir': str(base / 'tasks')},
        'keystone_authtoken': _authtoken(layout, secrets, cloud, 'glance'),
        'paste_deploy': {'flavor': 'keystone'},
        'oslo_policy': {'enforce_new_defaults': True},
        'import_filtering_opts': {
            'allowed_hosts': '[%s]' % layout_mod.HOST,
            'allowed_ports': '[%s]' % ','.join(
                str(layout.ports.api(c, 'glance'))
                for c in layout_mod.CLOUDS),
        },
    }


def placement(layout, secrets, cloud):
    return {
        'DEFAULT': _common(layout, cloud, 'placement'),
        'placement_database': {
            'connection': db_url(layout, secrets, cloud, 'placement')},
        'api': {'auth_strategy': 'keystone'},
        'keystone_authtoken': _authtoken(layout, secrets, cloud, 'placement'),
    }


def nova(layout, secrets, cloud, compute=False, host=None):
    """nova.conf; ``compute=True`` gives nova-compute's (no database).

    ``host`` is the compute host (default: the cloud's first); each compute
    host has its own state_path (node identity), instances_path, locks and
    log.  The other Nova services run as the first host.
    """
    first = layout_mod.compute_hosts(cloud)[0]
    host = host or first
    state = layout.compute_state_dir(cloud, host)
    # nova-conductor and nova-scheduler override this with --log-file.
    common = _common(layout, cloud,
                     layout_mod.compute_service(cloud, host) if compute
                     else 'nova-api')
    common.update({
        'transport_url': transport_url(layout, secrets, cloud),
        'host': host,
        'my_ip': layout_mod.HOST,
        'state_path': str(state),
        'instances_path': str(layout.instances_dir(cloud, host)),
        'compute_driver': 'devcloud.DevcloudDriver',
        'allow_resize_to_same_host': True,
        'vif_plugging_is_fatal': False,
        'vif_plugging_timeout': 0,
        'osapi_compute_workers': 1,
        'metadata_workers': 1,
        'heal_instance_info_cache_interval': -1,
    })
    conf = {
        'DEFAULT': common,
        'api': {'auth_strategy': 'keystone'},
        'keystone_authtoken': _authtoken(layout, secrets, cloud, 'nova'),
        'service_user': dict(_auth_section(layout, secrets, cloud, 'nova'),
                             send_service_user_token=True),
        'placement': _auth_section(layout, secrets, cloud, 'placement'),
        'glance': {'region_name': 'RegionOne'},
        'neutron': _auth_section(layout, secrets, cloud, 'neutron'),
        'oslo_concurrency': {'lock_path': str(state / 'locks')},
        'conductor': {'workers': 1},
        'scheduler': {'workers': 1},
        'wsgi': {'api_paste_config': str(layout.etc(cloud, 'nova') /
                                         'api-paste.ini')},
        'oslo_messaging_notifications': {'driver': 'noop'},
        'oslo_messaging_rabbit': dict(RABBIT),
        'notifications': {'notification_format': 'unversioned'},
        'vnc': {'enabled': False},
        # Nova finds Cinder in the catalog (block-storage / volumev3) and
        # calls it with the user's token; these credentials serve the calls
        # Nova makes with no user token (clean-ups, periodic tasks).
        'cinder': dict(_auth_section(layout, secrets, cloud, 'nova'),
                       os_region_name='RegionOne'),
    }
    if not compute:
        conf['api_database'] = {
            'connection': db_url(layout, secrets, cloud, 'nova_api')}
        conf['database'] = {
            'connection': db_url(layout, secrets, cloud, 'nova')}
    # Service users of nova talk to placement and neutron as themselves.
    conf['placement']['username'] = 'placement'
    conf['neutron']['username'] = 'neutron'
    return conf


def neutron(layout, secrets, cloud):
    common = _common(layout, cloud, 'neutron')
    common.update({
        'core_plugin': 'ml2',
        'service_plugins': 'router',
        'transport_url': transport_url(layout, secrets, cloud),
        'auth_strategy': 'keystone',
        'api_paste_config': str(layout.etc(cloud, 'neutron') /
                                'api-paste.ini'),
        'state_path': str(layout.cloud_dir(cloud) / 'neutron'),
        'notify_nova_on_port_status_changes': True,
        'notify_nova_on_port_data_changes': True,
        'dhcp_agent_notification': False,
        'api_workers': 1,
        'rpc_workers': 0,
        'rpc_state_report_workers': 0,
    })
    return {
        'DEFAULT': common,
        'database': {'connection': db_url(layout, secrets, cloud, 'neutron')},
        'keystone_authtoken': _authtoken(layout, secrets, cloud, 'neutron'),
        'nova': _auth_section(layout, secrets, cloud, 'nova'),
        'placement': _auth_section(layout, secrets, cloud, 'placement'),
        'oslo_concurrency': {
            'lock_path': str(layout.cloud_dir(cloud) / 'neutron' / 'locks')},
        'oslo_messaging_notifications': {'driver': 'noop'},
        'oslo_messaging_rabbit': dict(RABBIT),
        'agent': {'root_helper': '', 'root_helper_daemon': ''},
    }


def cinder(layout, secrets, cloud):
    """cinder.conf of ``cloud``: its API, scheduler, volume and backup.

    The volume backend is Cinder's NFS driver through the test-bed subclass
    :class:`overcloud_devcloud.cinder_nfs.LocalShareNfsDriver`: the "share"
    is a local directory (:meth:`Layout.volume_share`), never mounted.
    """
    state = layout.cinder_dir(cloud)
    privsep = '%s --config-file %s' % (layout.bin_dir / 'privsep-helper',
                                       layout.etc(cloud, 'cinder') /
                                       'cinder.conf')
    common = _common(layout, cloud, 'cinder-api')
    common.update({
        'transport_url': transport_url(layout, secrets, cloud),
        'host': layout_mod.storage_host(cloud),
        'my_ip': layout_mod.HOST,
        'state_path': str(state),
        'auth_strategy': 'keystone',
        'api_paste_config': str(layout.etc(cloud, 'cinder') /
                                'api-paste.ini'),
        'resource_query_filters_file': str(layout.etc_dir / 'cinder' /
                                           'resource_filters.json'),
        'osapi_volume_workers': 1,
        'enabled_backends': layout_mod.VOLUME_BACKEND,
        'default_volume_type': VOLUME_TYPES[0],
        'image_conversion_dir': str(state / 'conversion'),
        'backup_driver': 'cinder.backup.drivers.posix.PosixBackupDriver',
        'backup_posix_path': str(layout.backup_dir(cloud)),
        'backup_workers': 1,
        # The image-volume cache and friends are off by default: keep it so.
        'glance_catalog_info': 'image:glance:publicURL',
        'periodic_interval': 30,
        # cinder-volume tells the scheduler its capabilities at its start
        # and in a periodic task; Cinder delays the first periodic run by
        # up to 60 s at random, and a scheduler started at the same moment
        # may miss the first report: it then refuses every volume (no valid
        # backend) until the next.  Run the periodic tasks at once (after
        # the volume service listens, so its report or the scheduler's
        # request for one is always heard).
        'periodic_fuzzy_delay': 0,
    })
    backend = {
        'volume_driver': 'overcloud_devcloud.cinder_nfs.LocalShareNfsDriver',
        'volume_backend_name': layout_mod.VOLUME_BACKEND,
        'nfs_shares_config': str(layout.etc(cloud, 'cinder') / 'nfs_shares'),
        'nfs_mount_point_base': str(state / 'mnt'),
        'nfs_sparsed_volumes': True,
        # Snapshots are qcow2 overlays made with qemu-img; of an attached
        # volume, with the help of Nova (assisted volume snapshots).
        'nfs_snapshot_support': True,
        # Cinder's NFS driver refuses snapshots when secure file operations
        # are 'true'; the test-bed driver runs them as the bed's user anyway
        # (no sudo).  Secure permissions: volume files are mode 660.
        'nas_secure_file_operations': 'false',
        'nas_secure_file_permissions': 'true',
    }
    return {
        'DEFAULT': common,
        'database': {'connection': db_url(layout, secrets, cloud, 'cinder')},
        'keystone_authtoken': _authtoken(layout, secrets, cloud, 'cinder'),
        'service_user': dict(_auth_section(layout, secrets, cloud, 'cinder'),
                             send_service_user_token=True),
        # Cinder calls Nova for snapshots of attached volumes.
        'nova': dict(_auth_section(layout, secrets, cloud, 'cinder'),
                     interface='public'),
        'oslo_concurrency': {'lock_path': str(state / 'locks')},
        'coordination': {'backend_url': 'file://%s' % (state / 'coordination')},
        'oslo_messaging_notifications': {'driver': 'noop'},
        'oslo_messaging_rabbit': dict(RABBIT),
        layout_mod.VOLUME_BACKEND: backend,
        # Cinder inspects image and volume formats in a privsep daemon,
        # started by default with 'sudo privsep-helper' (no sudo here):
        # the bed's own user starts the helper.
        'cinder_sys_admin': {'helper_command': privsep},
        'privsep_osbrick': {'helper_command': privsep},
    }


# Volume types of every cloud; the first is the default.  Both are on the
# one backend (a migration maps types by name, so two names are enough).
VOLUME_TYPES = ('standard', 'fast')


def ml2(layout, secrets, cloud):
    return {
        'ml2': {
            'type_drivers': 'flat,vlan,vxlan',
            'tenant_network_types': 'vxlan',
            'mechanism_drivers': 'devcloud_bind',
            'extension_drivers': 'port_security',
        },
        'ml2_type_flat': {'flat_networks': 'public'},
        'ml2_type_vlan': {'network_vlan_ranges': 'public'},
        'ml2_type_vxlan': {'vni_ranges': '1:4000'},
    }


def render(sections):
    """INI text for {section: {option: value}}; values are plain scalars."""
    out = []
    for section, options in sections.items():
        out.append('[%s]' % section)
        for key, value in options.items():
            if isinstance(value, bool):
                value = 'true' if value else 'false'
            text = str(value)
            if '\n' in text:
                raise ValueError('option %s.%s holds a newline' % (section, key))
            out.append('%s = %s' % (key, text))
        out.append('')
    return '\n'.join(out)


def _write(path, sections):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(sections))
    path.chmod(0o600)  # holds passwords


def write_cloud(layout, secrets, cloud):
    """Write every configuration file of ``cloud``; returns nothing."""
    etc = layout.etc
    _write(etc(cloud, 'keystone') / 'keystone.conf',
           keystone(layout, secrets, cloud))
    _write(etc(cloud, 'glance') / 'glance-api.conf',
           glance(layout, secrets, cloud))
    _write(etc(cloud, 'placement') / 'placement.conf',
           placement(layout, secrets, cloud))
    _write(etc(cloud, 'nova') / 'nova.conf', nova(layout, secrets, cloud))
    for host in layout_mod.compute_hosts(cloud):
        _write(layout.compute_conf(cloud, host),
               nova(layout, secrets, cloud, compute=True, host=host))
        for path in (layout.compute_state_dir(cloud, host) / 'locks',
                     layout.instances_dir(cloud, host)):
            path.mkdir(parents=True, exist_ok=True)
    _write(etc(cloud, 'neutron') / 'neutron.conf',
           neutron(layout, secrets, cloud))
    _write(etc(cloud, 'neutron') / 'plugins' / 'ml2' / 'ml2_conf.ini',
           ml2(layout, secrets, cloud))
    _write(etc(cloud, 'cinder') / 'cinder.conf', cinder(layout, secrets, cloud))
    (etc(cloud, 'cinder') / 'nfs_shares').write_text(
        layout.volume_share_name(cloud) + '\n')
    # The paste pipelines ship with the services, in the venv's etc/.
    shutil.copy(layout.etc_dir / 'glance' / 'glance-api-paste.ini',
                etc(cloud, 'glance') / 'glance-api-paste.ini')
    shutil.copy(layout.etc_dir / 'nova' / 'api-paste.ini',
                etc(cloud, 'nova') / 'api-paste.ini')
    shutil.copy(layout.etc_dir / 'neutron' / 'api-paste.ini',
                etc(cloud, 'neutron') / 'api-paste.ini')
    shutil.copy(layout.etc_dir / 'cinder' / 'api-paste.ini',
                etc(cloud, 'cinder') / 'api-paste.ini')
    for path in (layout.volume_share(cloud), layout.backup_dir(cloud)):
        path.mkdir(parents=True, exist_ok=True)
    for sub in ('glance/images', 'glance/staging', 'glance/tasks',
                'glance/cache', 'nova/locks', 'neutron/locks', 'instances',
                'cinder/locks', 'cinder/conversion', 'cinder/coordination'):
        (layout.cloud_dir(cloud) / sub).mkdir(parents=True, exist_ok=True)
