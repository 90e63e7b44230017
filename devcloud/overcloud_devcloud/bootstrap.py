"""One-time initialisation of a cloud: schemas, identity, catalog, resources."""

import concurrent.futures
import datetime
import grp
import hashlib
import os
import pwd
import struct
import subprocess
import time

import openstack

from overcloud_devcloud import layout as layout_mod
from overcloud_devcloud import process

IMAGE_NAME = 'devcloud-raw'
IMAGE_SIZE = 8 * 1024 * 1024
EXTERNAL_NETWORK = 'public'
EXTERNAL_CIDR = '172.24.4.0/24'
FLAVORS = (('m1.tiny', 1, 512, 1), ('m1.small', 1, 2048, 20))
CATALOG = (('glance', 'image', 'glance'),
           ('placement', 'placement', 'placement'),
           ('nova', 'compute', 'nova-api'),
           ('neutron', 'network', 'neutron'))
# Cinder's user and catalog entries; clients still look for 'volumev3' (an
# alias of block-storage in the service-types authority), so both are there.
CINDER_USER = 'cinder'
CINDER_CATALOG = (('cinder', 'block-storage'), ('cinderv3', 'volumev3'))


def image_bytes():
    """A small raw disk image, the same on every machine.

    A boot sector with an MBR partition table (one Linux partition from
    sector 2048: Glance's format inspector refuses an MBR without one), then
    alternating data and zero regions, as in a real VM image (transports are
    expected to make the most of the zeros).
    """
    out = bytearray(IMAGE_SIZE)
    out[0:16] = b'DEVCLOUD-RAW-001'
    sectors = IMAGE_SIZE // 512
    out[446:462] = struct.pack('<B3BB3BII', 0x00, 0, 0, 0, 0x83, 0, 0, 0,
                               2048, sectors - 2048)
    out[510:512] = b'\x55\xaa'
    block = 64 * 1024
    for offset in range(block, IMAGE_SIZE, 2 * block):
        seed = hashlib.sha256(b'devcloud %d' % offset).digest()
        chunk = hashlib.shake_256(seed).digest(block)
        out[offset:offset + block] = chunk
    return bytes(out)


def _run(layout, cloud, name, argv, env=None):
    """Run a management command; on failure raise with its log's tail."""
    log = layout.logfile('%s-%s' % (cloud, name))
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, 'ab') as handle:
        result = subprocess.run([str(a) for a in argv], stdout=handle,
                                stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
    if result.returncode:
        raise process.ProcessError(
            '%s of %s failed (exit %d); log %s:\n%s' % (
                name, cloud, result.returncode, log, process.tail(log)))


def sync_databases(layout, secrets, cloud):
    """Create every schema of ``cloud``; the services run in parallel."""
    bin_dir, etc = layout.bin_dir, layout.etc
    keystone_conf = etc(cloud, 'keystone') / 'keystone.conf'
    nova_conf = etc(cloud, 'nova') / 'nova.conf'
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    env = dict(os.environ, OS_BOOTSTRAP_PASSWORD=secrets[cloud]['admin'])
    keys = layout.cloud_dir(cloud) / 'keys'
    for sub in ('fernet', 'receipts', 'credential'):
        (keys / sub).mkdir(parents=True, exist_ok=True, mode=0o700)

    def keystone():
        manage = [bin_dir / 'keystone-manage', '--config-file', keystone_conf]
        _run(layout, cloud, 'keystone-manage', manage + ['db_sync'])
        for step in ('fernet_setup', 'credential_setup'):
            _run(layout, cloud, 'keystone-manage',
                 manage + [step, '--keystone-user', user,
                           '--keystone-group', group])
        url = layout.url(cloud, 'keystone')
        _run(layout, cloud, 'keystone-manage', manage + [
            'bootstrap', '--bootstrap-username', 'admin',
            '--bootstrap-project-name', 'admin',
            '--bootstrap-admin-url', url, '--bootstrap-internal-url', url,
            '--bootstrap-public-url', url,
            '--bootstrap-region-id', 'RegionOne'], env=env)

    def glance():
        _run(layout, cloud, 'glance-manage', [
            bin_dir / 'glance-manage', '--config-file',
            etc(cloud, 'glance') / 'glance-api.conf', 'db_sync'])

    def placement():
        _run(layout, cloud, 'placement-manage', [
            bin_dir / 'placement-manage', '--config-file',
            etc(cloud, 'placement') / 'placement.conf', 'db', 'sync'])

    def nova():
        manage = [bin_dir / 'nova-manage', '--config-file', nova_conf]
        _run(layout, cloud, 'nova-manage', manage + ['api_db', 'sync'])
        # cell0's database is derived from [database] connection + '_cell0'.
        _run(layout, cloud, 'nova-manage', manage + ['cell_v2', 'map_cell0'])
        _run(layout, cloud, 'nova-manage',
             manage + ['cell_v2', 'create_cell', '--name', 'cell1'])
        _run(layout, cloud, 'nova-manage', manage + ['db', 'sync'])

    def neutron():
        _run(layout, cloud, 'neutron-db-manage', [
            bin_dir / 'neutron-db-manage',
            '--config-file', etc(cloud, 'neutron') / 'neutron.conf',
            '--config-file',
            etc(cloud, 'neutron') / 'plugins' / 'ml2' / 'ml2_conf.ini',
            'upgrade', 'heads'])

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        jobs = [pool.submit(f) for f in (keystone, glance, placement, nova,
                                         neutron)]
        jobs.append(pool.submit(sync_cinder_database, layout, cloud))
        for job in jobs:
            job.result()


def sync_cinder_database(layout, cloud):
    """Create (or upgrade) Cinder's schema of ``cloud``."""
    _run(layout, cloud, 'cinder-manage', [
        layout.bin_dir / 'cinder-manage', '--config-file',
        layout.etc(cloud, 'cinder') / 'cinder.conf', 'db', 'sync'])


def connect(layout, secrets, cloud, admin=True, project='admin'):
    user = 'admin' if admin else 'demo'
    password = secrets[cloud]['admin' if admin else 'member']
    return openstack.connect(
        auth_url=layout.url(cloud, 'keystone'), username=user,
        password=password, project_name=project,
        user_domain_name='Default', project_domain_name='Default',
        region_name='RegionOne', identity_api_version='3',
        load_yaml_config=False, load_envvars=False)


def register_identity(layout, secrets, cloud):
    """Service users, the demo project and user, and the service catalog."""
    conn = connect(layout, secrets, cloud)
    identity = conn.identity
    roles = {r.name: r for r in identity.roles()}
    if 'service' not in roles:
        roles['service'] = identity.create_role(name='service')
    domain = 'default'
    service_project = identity.create_project(name='service',
                                              domain_id=domain)
    demo = identity.create_project(name='demo', domain_id=domain,
                                   description='devcloud tenant')
    admin = identity.find_user('admin', domain_id=domain)
    identity.assign_project_role_to_user(demo, admin, roles['admin'])
    member = identity.create_user(name='demo', domain_id=domain,
                                  default_project_id=demo.id,
                                  password=secrets[cloud]['member'])
    identity.assign_project_role_to_user(demo, member, roles['member'])
    for user, service_type, service in CATALOG:
        account = identity.create_user(name=user, domain_id=domain,
                                       password=secrets[cloud]['service'],
                                       default_project_id=service_project.id)
        for role in ('admin', 'service'):
            identity.assign_project_role_to_user(service_project, account,
                                                 roles[role])
        entry = identity.create_service(name=user, type=service_type)
        for interface in ('public', 'internal', 'admin'):
            identity.create_endpoint(service_id=entry.id, interface=interface,
                                     url=layout.url(cloud, service),
                                     region_id='RegionOne')


def _service_account(identity, roles, project, name, password):
    """A service user with the admin and service roles in ``project``."""
    account = identity.find_user(name, domain_id='default')
    if account is None:
        account = identity.create_user(name=name, domain_id='default',
                                       password=password,
                                       default_project_id=project.id)
    for role in ('admin', 'service'):
        identity.assign_project_role_to_user(project, account, roles[role])
    return account


def register_cinder(layout, secrets, cloud):
    """Cinder's service user and catalog entries (idempotent: a bed made
    before devcloud had Cinder gains them at its next start)."""
    conn = connect(layout, secrets, cloud)
    identity = conn.identity
    roles = {r.name: r for r in identity.roles()}
    project = identity.find_project('service', domain_id='default',
                                    ignore_missing=False)
    _service_account(identity, roles, project, CINDER_USER,
                     secrets[cloud]['service'])
    known = {s.type for s in identity.services()}
    for name, service_type in CINDER_CATALOG:
        if service_type in known:
            continue
        entry = identity.create_service(name=name, type=service_type)
        for interface in ('public', 'internal', 'admin'):
            identity.create_endpoint(service_id=entry.id, interface=interface,
                                     url=layout.url(cloud, 'cinder-api'),
                                     region_id='RegionOne')


def create_volume_types(layout, secrets, cloud):
    """The volume types of :data:`confgen.VOLUME_TYPES`, all public and on
    the cloud's one backend (idempotent)."""
    from overcloud_devcloud import confgen
    conn = connect(layout, secrets, cloud)
    storage = conn.block_storage
    known = {t.name for t in storage.types()}
    for name in confgen.VOLUME_TYPES:
        if name in known:
            continue
        storage.create_type(
            name=name, is_public=True,
            description='devcloud volume type %s' % name,
            extra_specs={'volume_backend_name': layout_mod.VOLUME_BACKEND})


def wait_for_block_storage(conn, cloud, still_running, since, timeout=120):
    """Wait until Cinder's scheduler, volume and backup services of
    ``cloud`` have reported in since ``since`` (see
    :func:`wait_for_compute`), and the scheduler knows the volume backend's
    pool.

    A scheduler without the backend's capabilities puts every new volume
    in 'error' (no valid backend): it learns them from cinder-volume's
    start and periodic reports, which the bed waits for here.
    """
    wanted = {(binary, layout_mod.cinder_host(cloud, binary))
              for binary in layout_mod.CINDER_SERVICES}
    deadline = time.monotonic() + timeout
    fresh, pools = set(), []
    while True:
        still_running()
        fresh = {(svc.binary, svc.host)
                 for svc in conn.block_storage.services()
                 if svc.state == 'up' and svc.status == 'enabled'
                 and svc.updated_at and _utc(svc.updated_at) >= since}
        if wanted <= fresh:
            pools = list(conn.block_storage.backend_pools())
            if pools:
                return
        if time.monotonic() >= deadline:
            break
        time.sleep(1)
    if wanted <= fresh:
        raise process.ProcessError(
            'Cinder of %s did not become ready within %d s: its scheduler '
            'has no capabilities from %s' % (
                cloud, timeout,
                layout_mod.cinder_host(cloud, 'cinder-volume')))
    raise process.ProcessError(
        'Cinder of %s did not report as up within %d s (no fresh heartbeat '
        'from %s)' % (cloud, timeout, ', '.join(
            '%s on %s' % pair for pair in sorted(wanted - fresh))))


def wait_for_compute(conn, cloud, still_running, since, timeout=120):
    """Wait until every nova-compute of ``cloud``, and its nova-conductor
    and nova-scheduler, have reported in since ``since``.

    A heartbeat newer than ``since`` (a naive UTC datetime taken before the
    processes started) proves a restarted service consumes its RPC queue:
    its 'up' state alone may be left from before a restart, and a request
    cast to it then is lost with the broker's non-durable queues (and once
    the old heartbeat is older than Nova's service_down_time it reads as
    'down').  Each compute host of the cloud (:func:`layout.compute_hosts`)
    must report, and the conductor and scheduler on the first of them.
    ``still_running()`` raises when a process of the cloud has died.
    """
    hosts = layout_mod.compute_hosts(cloud)
    wanted = {('nova-compute', host) for host in hosts}
    wanted.update((binary, hosts[0]) for binary in layout_mod.RPC_SERVICES)
    deadline = time.monotonic() + timeout
    while True:
        still_running()
        fresh = {(svc.binary, svc.host) for svc in conn.compute.services()
                 if svc.state == 'up' and svc.updated_at
                 and _utc(svc.updated_at) >= since}
        if wanted <= fresh:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(1)
    raise process.ProcessError(
        'Nova of %s did not report as up within %d s (no fresh heartbeat '
        'from %s)' % (cloud, timeout, ', '.join(
            '%s on %s' % pair for pair in sorted(wanted - fresh))))


def _utc(text):
    """Nova's naive UTC timestamp text as a datetime."""
    return datetime.datetime.fromisoformat(text.rstrip('Z').split('+')[0])


def discover_hosts(layout, cloud):
    _run(layout, cloud, 'nova-manage', [
        layout.bin_dir / 'nova-manage', '--config-file',
        layout.etc(cloud, 'nova') / 'nova.conf', 'cell_v2', 'discover_hosts'])


def discover_new_hosts(layout, cloud):
    """Map the compute hosts of ``cloud`` into cell1 unless done before.

    The hosts mapped are recorded in ``<cloud>/discovered-hosts``, so a
    warm start runs ``nova-manage`` (a few seconds of CPU) only when a
    compute host was added since.
    """
    record = layout.cloud_dir(cloud) / 'discovered-hosts'
    wanted = sorted(layout_mod.compute_hosts(cloud))
    try:
        if record.read_text().split() == wanted:
            return
    except FileNotFoundError:
        pass
    discover_hosts(layout, cloud)
    record.write_text('\n'.join(wanted) + '\n')


def create_resources(layout, secrets, cloud):
    """Flavors, the external network and the devcloud image."""
    conn = connect(layout, secrets, cloud)
    for name, vcpus, ram, disk in FLAVORS:
        conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram,
                                   disk=disk, is_public=True)
    net = conn.network.create_network(
        name=EXTERNAL_NETWORK, is_router_external=True, is_shared=False,
        provider_network_type='flat',
        provider_physical_network=EXTERNAL_NETWORK)
    conn.network.create_subnet(
        network_id=net.id, name='%s-subnet' % EXTERNAL_NETWORK,
        ip_version=4, cidr=EXTERNAL_CIDR, gateway_ip='172.24.4.1',
        allocation_pools=[{'start': '172.24.4.10', 'end': '172.24.4.250'}],
        is_dhcp_enabled=False)
    image = conn.image.create_image(
        name=IMAGE_NAME, disk_format='raw', container_format='bare',
        visibility='public', data=image_bytes(), wait=True,
        allow_duplicates=True)
    conn.image.wait_for_status(image, 'active', failures=['killed'], wait=60)


def clouds_yaml(layout, secrets):
    """The clouds.yaml text: devcloud-X (admin) and devcloud-X-member."""
    clouds = {}
    for cloud in layout_mod.CLOUDS:
        base = {'region_name': 'RegionOne', 'identity_api_version': 3,
                'interface': 'public'}
        for suffix, user, password in (
                ('', 'admin', secrets[cloud]['admin']),
                ('-member', 'demo', secrets[cloud]['member'])):
            clouds[cloud + suffix] = dict(base, auth={
                'auth_url': layout.url(cloud, 'keystone'),
                'username': user, 'password': password,
                'project_name': 'demo',
                'user_domain_name': 'Default',
                'project_domain_name': 'Default'})
    return {'clouds': clouds}
