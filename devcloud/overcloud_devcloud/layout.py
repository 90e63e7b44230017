"""Where devcloud keeps its state and which loopback ports it uses.

Everything devcloud writes lives under one state directory, chosen by
``OVERCLOUD_DEVCLOUD_HOME`` (default: ``.devcloud`` in the source checkout
devcloud runs from, the one ``tools/demo.sh`` and ``tools/test.sh`` use, so
every command finds the same bed; outside a checkout
``$XDG_DATA_HOME/overcloud-devcloud``, i.e.
``~/.local/share/overcloud-devcloud``).  Ports are laid out from one base
port, ``OVERCLOUD_DEVCLOUD_BASE_PORT`` (default 25300, below Linux's range of
ports for outgoing connections, 32768-60999, so that no client socket can take
one while a service restarts), so that two beds can coexist on one machine by
choosing different bases.  A bed remembers the base it was set up with (its
Keystone catalog holds those ports) and keeps using it.
"""

import dataclasses
import json
import os
import pathlib
import sysconfig

HOME_ENV = 'OVERCLOUD_DEVCLOUD_HOME'
BASE_PORT_ENV = 'OVERCLOUD_DEVCLOUD_BASE_PORT'
DEFAULT_BASE_PORT = 25300
BASE_PORT_FILE = 'base-port'
HOST = '127.0.0.1'

CLOUDS = ('devcloud-a', 'devcloud-b')

# API services of one cloud, in start order, with their offset from the
# cloud's first port.
API_SERVICES = ('keystone', 'glance', 'placement', 'nova-api', 'neutron',
                'cinder-api')
# Services of one cloud that listen on no port (nova-compute runs once per
# compute host, see COMPUTE_HOSTS).
RPC_SERVICES = ('nova-conductor', 'nova-scheduler')
# Cinder's services of one cloud that listen on no port; they all run as the
# cloud's storage host (see :func:`storage_host`).
CINDER_SERVICES = ('cinder-scheduler', 'cinder-volume', 'cinder-backup')
# The one Cinder backend of each cloud (``enabled_backends``): Cinder's NFS
# driver on a local directory, the cloud's volume share.
VOLUME_BACKEND = 'nfs'
# Nova compute hosts (``[DEFAULT] host``) of each cloud.  devcloud-b has two,
# so that placement on a chosen destination host can be tested.  The first
# host of a cloud keeps the paths a one-compute bed used.
COMPUTE_HOSTS = {
    'devcloud-a': ('devcloud-a-compute',),
    'devcloud-b': ('devcloud-b-compute', 'devcloud-b-compute-2'),
}


def compute_hosts(cloud):
    """Nova compute host names of ``cloud``, the first one first."""
    return COMPUTE_HOSTS[cloud]


def compute_service(cloud, host):
    """Bed service name of the nova-compute of ``host``.

    'devcloud-b-compute' -> 'nova-compute',
    'devcloud-b-compute-2' -> 'nova-compute-2'.
    """
    return 'nova-' + host[len(cloud) + 1:]


def checkout_home(package_dir=None):
    """``<checkout>/.devcloud`` when devcloud is installed from a source
    checkout of overcloud-migrate (editable, as tools/bootstrap.sh does),
    else None."""
    package_dir = pathlib.Path(package_dir or __file__).resolve()
    if package_dir.is_file():
        package_dir = package_dir.parent
    root = package_dir.parent.parent    # <checkout>/devcloud/overcloud_devcloud
    if (root / 'devcloud' / 'pyproject.toml').is_file() and \
            (root / 'tools' / 'bootstrap.sh').is_file():
        return root / '.devcloud'
    return None


def storage_host(cloud):
    """``[DEFAULT] host`` of the Cinder services of ``cloud``."""
    return '%s-storage' % cloud


def cinder_host(cloud, binary):
    """The host Cinder reports for its service ``binary`` of ``cloud``
    (cinder-volume reports ``host@backend``)."""
    host = storage_host(cloud)
    if binary == 'cinder-volume':
        return '%s@%s' % (host, VOLUME_BACKEND)
    return host


def default_home():
    checkout = checkout_home()
    if checkout is not None:
        return checkout
    data = os.environ.get('XDG_DATA_HOME') or os.path.join(
        os.path.expanduser('~'), '.local', 'share')
    return pathlib.Path(data) / 'overcloud-devcloud'


@dataclasses.dataclass(frozen=True)
class Ports:
    base: int = DEFAULT_BASE_PORT

    @property
    def mariadb(self):
        return self.base

    @property
    def amqp(self):
        return self.base + 1

    @property
    def erlang_dist(self):
        return self.base + 2

    @property
    def epmd(self):
        return self.base + 3

    def api(self, cloud, service):
        index = CLOUDS.index(cloud)
        return self.base + 10 * (index + 1) + API_SERVICES.index(service)

    def all(self):
        """Every port the bed listens on, as {port: description}."""
        ports = {
            self.mariadb: 'mariadb',
            self.amqp: 'rabbitmq (amqp)',
            self.erlang_dist: 'rabbitmq (erlang distribution)',
            self.epmd: 'epmd',
        }
        for cloud in CLOUDS:
            for service in API_SERVICES:
                ports[self.api(cloud, service)] = '%s of %s' % (service, cloud)
        return ports


class Layout:
    """Paths of one bed, all below ``home``."""

    def __init__(self, home=None, base_port=None):
        if home is None:
            home = os.environ.get(HOME_ENV) or default_home()
        self.home = pathlib.Path(home).absolute()
        if base_port is None:
            base_port = self._base_port_from_env_or_bed()
        if not 1024 <= base_port <= 65000:
            raise ValueError('%s must be between 1024 and 65000, not %d'
                             % (BASE_PORT_ENV, base_port))
        self.ports = Ports(base_port)

    def _base_port_from_env_or_bed(self):
        raw = os.environ.get(BASE_PORT_ENV)
        recorded = None
        try:
            recorded = int(self.base_port_file.read_text().strip())
        except (OSError, ValueError):
            pass
        if not raw:
            return recorded or DEFAULT_BASE_PORT
        try:
            wanted = int(raw)
        except ValueError:
            raise ValueError('%s must be a port number, not %r'
                             % (BASE_PORT_ENV, raw))
        if recorded and wanted != recorded:
            raise ValueError(
                'The bed in %s was set up on base port %d, not %d: unset %s '
                'or set it to %d, or remove the bed (overcloud-devcloud down '
                '--purge).' % (self.home, recorded, wanted, BASE_PORT_ENV,
                               recorded))
        return wanted

    @property
    def base_port_file(self):
        """The base port the bed was set up with (written at a cold start)."""
        return self.home / BASE_PORT_FILE

    # Where the OpenStack console scripts of this Python live.
    bin_dir = pathlib.Path(sysconfig.get_path('scripts'))
    etc_dir = pathlib.Path(sysconfig.get_path('data')) / 'etc'

    @property
    def run_dir(self):
        return self.home / 'run'

    @property
    def log_dir(self):
        return self.home / 'log'

    @property
    def secrets_file(self):
        return self.home / 'secrets.json'

    @property
    def clouds_yaml(self):
        return self.home / 'clouds.yaml'

    @property
    def ready_marker(self):
        """Exists once a cold start has fully initialised the bed."""
        return self.home / 'initialised'

    @property
    def mariadb_dir(self):
        return self.home / 'mariadb'

    @property
    def mariadb_socket(self):
        return self.run_dir / 'mariadb.sock'

    @property
    def rabbit_dir(self):
        return self.home / 'rabbitmq'

    def cloud_dir(self, cloud):
        return self.home / cloud

    def etc(self, cloud, service=''):
        return self.cloud_dir(cloud) / 'etc' / service

    def cinder_dir(self, cloud):
        """Cinder's ``state_path`` of ``cloud``: locks, image conversion."""
        return self.cloud_dir(cloud) / 'cinder'

    def volume_share(self, cloud):
        """The directory that stands for ``cloud``'s NFS export.

        Cinder's NFS driver keeps one file per volume there
        (``volume-<uuid>``, raw; after a snapshot, qcow2 overlays
        ``volume-<uuid>.<snapshot uuid>`` and a ``volume-<uuid>.info`` that
        names the active file).  A DTN of the cloud reads and writes these
        files directly, as it would on the real NFS share.
        """
        return self.cloud_dir(cloud) / 'volumes'

    def image_store(self, cloud):
        """Glance's filesystem store of ``cloud``: one file per image,
        named by its ID (a DTN of the cloud reads snapshots there: warm
        migration's --dest-boot-volume)."""
        return self.cloud_dir(cloud) / 'glance' / 'images'

    def volume_share_name(self, cloud):
        """The share as Cinder names it (``host:/path``, NFS syntax)."""
        return '%s:%s' % (HOST, self.volume_share(cloud))

    def backup_dir(self, cloud):
        """Where Cinder's posix backup driver of ``cloud`` writes."""
        return self.cloud_dir(cloud) / 'backups'

    def cinder_marker(self, cloud):
        """Exists once Cinder of ``cloud`` is initialised (a bed made
        before devcloud had Cinder gains it at its next start)."""
        return self.cloud_dir(cloud) / 'cinder-initialised'

    def compute_dir(self, cloud, host):
        """Private directory of one compute host (not the first one)."""
        return self.cloud_dir(cloud) / 'computes' / host

    def compute_state_dir(self, cloud, host):
        """``state_path`` of a nova-compute: its node identity (compute_id).

        Each compute host has its own, so no two share a node UUID.
        """
        if host == compute_hosts(cloud)[0]:
            return self.cloud_dir(cloud) / 'nova'
        return self.compute_dir(cloud, host) / 'nova'

    def instances_dir(self, cloud, host=None):
        """Nova's instances_path of ``host``: one disk file per server."""
        if host is None or host == compute_hosts(cloud)[0]:
            return self.cloud_dir(cloud) / 'instances'
        return self.compute_dir(cloud, host) / 'instances'

    def compute_conf(self, cloud, host):
        """nova-compute's configuration file for ``host``."""
        if host == compute_hosts(cloud)[0]:
            name = 'nova-compute.conf'
        else:
            name = '%s.conf' % compute_service(cloud, host)
        return self.etc(cloud, 'nova') / name

    def server_disk(self, cloud, server_id, host=None):
        """Disk file of a server; without ``host``, on whichever compute
        host of ``cloud`` holds it (the first host's path if none does)."""
        name = '%s.disk' % server_id
        if host is not None:
            return self.instances_dir(cloud, host) / name
        for candidate in compute_hosts(cloud):
            path = self.instances_dir(cloud, candidate) / name
            if path.exists():
                return path
        return self.instances_dir(cloud) / name

    def server_volumes(self, cloud, server_id):
        """What the guest of a server sees of its Cinder volumes, as the
        test-bed Nova driver records it: {volume id: {'mountpoint':
        '/dev/vdb', 'device_path': the file the guest reads and writes,
        'format': 'raw' or 'qcow2' (after a snapshot of the attached
        volume), 'root': True for the volume a server booted from}}."""
        disk = self.server_disk(cloud, server_id)
        record = disk.with_name('%s.json' % server_id)
        try:
            return json.loads(record.read_text()).get('volumes', {})
        except FileNotFoundError:
            return {}

    def volume_file(self, cloud, volume_id):
        """The base file of a volume on its cloud's share (the active file
        is another one once the volume has snapshots: see
        :meth:`volume_share`)."""
        return self.volume_share(cloud) / ('volume-%s' % volume_id)

    def pidfile(self, name):
        return self.run_dir / ('%s.pid' % name)

    def logfile(self, name):
        return self.log_dir / ('%s.log' % name)

    def url(self, cloud, service):
        port = self.ports.api(cloud, service)
        suffix = {'keystone': '/v3', 'nova-api': '/v2.1',
                  'cinder-api': '/v3'}.get(service, '')
        return 'http://%s:%d%s' % (HOST, port, suffix)
