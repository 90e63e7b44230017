"""What runs in a bed: one :class:`Service` per process, with its command."""

import dataclasses
import os
import shutil
import sys

from overcloud_devcloud import layout as layout_mod

# uWSGI flags for every API; Glance also needs chunked input (Nova uploads
# snapshots in 1 MiB chunks).
UWSGI_FLAGS = ('--master', '--processes', '1', '--threads', '4',
               '--enable-threads', '--lazy-apps', '--need-app',
               '--die-on-term', '--buffer-size', '65535', '--vacuum',
               # uWSGI's http-socket closes every connection after the
               # reply; saying so stops clients from reusing a dead socket
               # (else: "Connection reset by peer" on the next POST).
               '--add-header', 'Connection: close')
GLANCE_FLAGS = ('--http-chunked-input', '--chunked-input-limit', '67108864',
                '--http-raw-body', '--socket-timeout', '30')
WSGI_MODULES = {
    'keystone': 'keystone.wsgi.api:application',
    'glance': 'glance.wsgi.api:application',
    'placement': 'placement.wsgi.api:application',
    'nova-api': 'nova.wsgi.osapi_compute:application',
    'neutron': 'neutron.wsgi.api:application',
    'cinder-api': 'cinder.wsgi.api:application',
}

DEBIAN_PACKAGES = {'mariadbd': 'mariadb-server',
                   'mariadb-install-db': 'mariadb-server',
                   'qemu-img': 'qemu-utils',
                   'rabbitmq-server': 'rabbitmq-server'}
RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server'


@dataclasses.dataclass
class Service:
    name: str            # unique in the bed, e.g. 'devcloud-a/keystone'
    argv: list
    env: dict
    port: int = None     # None for services that listen on nothing
    cloud: str = None
    health: str = 'http'  # 'http', 'tcp' or 'process'
    binary: str = None   # RPC services: the binary the API reports
    host: str = None     # RPC services: the host the API reports
    api: str = 'compute'  # RPC services: the API that lists them
    # RPC services: the preloader family ('nova', 'cinder') that can start
    # the service (see overcloud_devcloud.preload), and the arguments it
    # then gets; ``argv`` starts the same service on its own.
    preload: str = None
    args: list = None

    @property
    def slug(self):
        return self.name.replace('/', '-')


def find_binary(name):
    """Absolute path of a system binary (also looks in sbin dirs)."""
    if name == 'rabbitmq-server':
        return RABBITMQ_SERVER if os.path.exists(RABBITMQ_SERVER) else None
    path = os.pathsep.join([os.environ.get('PATH', ''), '/usr/sbin', '/sbin'])
    return shutil.which(name, path=path)


def missing_packages():
    """Debian packages whose binaries the bed needs but cannot find."""
    return sorted({pkg for binary, pkg in DEBIAN_PACKAGES.items()
                   if find_binary(binary) is None})


def _base_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('OS_', 'OVERCLOUD_'))}
    env['PYTHONUNBUFFERED'] = '1'
    return env


def api_service(layout, cloud, service):
    env = _base_env()
    etc = layout.etc(cloud, service.replace('-api', ''))
    if service == 'keystone':
        env['OS_KEYSTONE_CONFIG_FILES'] = str(etc / 'keystone.conf')
    elif service == 'glance':
        env['OS_GLANCE_CONFIG_DIR'] = str(etc)
    elif service == 'placement':
        env['OS_PLACEMENT_CONFIG_DIR'] = str(etc)
    elif service == 'nova-api':
        env['OS_NOVA_CONFIG_DIR'] = str(etc)
        env['OS_NOVA_CONFIG_FILES'] = 'api-paste.ini;nova.conf'
    elif service == 'neutron':
        env['OS_NEUTRON_CONFIG_DIR'] = str(etc)
        env['OS_NEUTRON_CONFIG_FILES'] = 'neutron.conf;plugins/ml2/ml2_conf.ini'
    port = layout.ports.api(cloud, service)
    argv = [layout.bin_dir / 'uwsgi',
            '--http-socket', '%s:%d' % (layout_mod.HOST, port),
            '--module', WSGI_MODULES[service],
            '--procname-prefix', '%s-' % cloud,
            *UWSGI_FLAGS]
    if service == 'glance':
        argv.extend(GLANCE_FLAGS)
    if service == 'cinder-api':
        # cinder.wsgi parses sys.argv, which uWSGI fills from --pyargv;
        # volumes are uploaded to images in chunks, like Nova's snapshots.
        argv.extend(['--pyargv', '--config-file %s' % (etc / 'cinder.conf'),
                     *GLANCE_FLAGS])
    return Service('%s/%s' % (cloud, service), argv, env, port, cloud)


def rpc_service(layout, cloud, service):
    """nova-conductor or nova-scheduler of ``cloud``, in one process (the
    launcher stops oslo.service forking a worker beside an idle master)."""
    args = ['--config-file', layout.etc(cloud, 'nova') / 'nova.conf',
            '--log-file', layout.logfile('%s-%s' % (cloud, service))]
    argv = [sys.executable, '-m', 'overcloud_devcloud.nofork', service, *args]
    return Service('%s/%s' % (cloud, service), argv, _base_env(), None,
                   cloud, health='process', binary=service,
                   host=layout_mod.compute_hosts(cloud)[0],
                   preload='nova', args=args)


def compute_service(layout, cloud, host):
    """The nova-compute of compute host ``host`` of ``cloud``."""
    # The launcher makes the test-bed driver importable as nova.virt.*.
    args = ['--config-file', layout.compute_conf(cloud, host)]
    argv = [sys.executable, '-m', 'overcloud_devcloud.compute', *args]
    return Service('%s/%s' % (cloud, layout_mod.compute_service(cloud, host)),
                   argv, _base_env(), None, cloud, health='process',
                   binary='nova-compute', host=host, preload='nova',
                   args=args)


def cinder_service(layout, cloud, service):
    """cinder-scheduler, cinder-volume or cinder-backup of ``cloud``."""
    args = ['--config-file', layout.etc(cloud, 'cinder') / 'cinder.conf',
            '--log-file', layout.logfile('%s-%s' % (cloud, service))]
    return Service('%s/%s' % (cloud, service),
                   [layout.bin_dir / service, *args], _base_env(), None,
                   cloud, health='process', binary=service,
                   host=layout_mod.cinder_host(cloud, service),
                   api='block-storage', preload='cinder', args=args)


def cloud_services(layout, cloud):
    return ([api_service(layout, cloud, s) for s in layout_mod.API_SERVICES]
            + [rpc_service(layout, cloud, s) for s in layout_mod.RPC_SERVICES]
            + [compute_service(layout, cloud, h)
               for h in layout_mod.compute_hosts(cloud)]
            + [cinder_service(layout, cloud, s)
               for s in layout_mod.CINDER_SERVICES])


def mariadb_service(layout):
    user = 'root' if os.geteuid() == 0 else None
    argv = [find_binary('mariadbd') or 'mariadbd', '--no-defaults',
            '--datadir=%s' % layout.mariadb_dir,
            '--socket=%s' % layout.mariadb_socket,
            '--port=%d' % layout.ports.mariadb,
            '--bind-address=%s' % layout_mod.HOST,
            '--pid-file=%s' % (layout.run_dir / 'mariadbd.pid'),
            '--log-error=%s' % layout.logfile('mariadb'),
            '--skip-name-resolve', '--skip-log-bin',
            '--max-connections=1500',
            # the bed's databases hold about 40 MiB
            '--innodb-buffer-pool-size=48M',
            '--innodb-log-file-size=48M',
            '--innodb-flush-log-at-trx-commit=2',
            '--character-set-server=utf8mb4',
            '--collation-server=utf8mb4_general_ci']
    if user:
        argv.append('--user=%s' % user)
    return Service('mariadb', argv, _base_env(), layout.ports.mariadb,
                   health='tcp')


def rabbitmq_service(layout):
    base = layout.rabbit_dir
    env = _base_env()
    env.update({
        'HOME': str(base),  # the Erlang cookie lives here
        'RABBITMQ_NODENAME': 'devcloud@localhost',
        'RABBITMQ_NODE_IP_ADDRESS': layout_mod.HOST,
        'RABBITMQ_NODE_PORT': str(layout.ports.amqp),
        'RABBITMQ_DIST_PORT': str(layout.ports.erlang_dist),
        'ERL_EPMD_PORT': str(layout.ports.epmd),
        'ERL_EPMD_ADDRESS': layout_mod.HOST,
        'RABBITMQ_MNESIA_BASE': str(base / 'mnesia'),
        'RABBITMQ_LOG_BASE': str(layout.log_dir),
        'RABBITMQ_CONFIG_FILE': str(base / 'rabbitmq.conf'),
        'RABBITMQ_ADVANCED_CONFIG_FILE': str(base / 'advanced.config'),
        'RABBITMQ_ENABLED_PLUGINS_FILE': str(base / 'enabled_plugins'),
        'RABBITMQ_CONF_ENV_FILE': str(base / 'rabbitmq-env.conf'),
        'RABBITMQ_PID_FILE': str(layout.run_dir / 'rabbitmq-beam.pid'),
    })
    return Service('rabbitmq', [RABBITMQ_SERVER], env, layout.ports.amqp,
                   health='tcp')
