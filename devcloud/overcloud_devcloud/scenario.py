"""The 3-tier project: a realistic small service to migrate.

Two tenant networks (web and app) behind one router with an external
gateway, three security groups that refer to each other, a keypair, three
servers on fixed IPs (web, app, db) and a floating IP on the web server.
Used by the README demo and the functional tests.

With ``volumes=True`` the servers carry Cinder volumes too: db boots from a
volume (made from the devcloud image) and has two data volumes attached,
``PREFIX-db-data`` (type ``standard``) and ``PREFIX-db-log`` (type
``fast``); app boots from the image and has ``PREFIX-app-data`` attached.
"""

import dataclasses

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives import serialization

from overcloud_devcloud import bootstrap



def public_key():
    """A fresh ed25519 public key in OpenSSH form (private part dropped)."""
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode() + \
        ' devcloud-3tier'


@dataclasses.dataclass
class ThreeTier:
    prefix: str
    networks: dict
    subnets: dict
    router: object
    groups: dict
    keypair: str
    ports: dict
    servers: dict
    floating_ip: object
    # {tier: [volume, ...]} in attachment order, the boot volume first
    volumes: dict = dataclasses.field(default_factory=dict)

    def server_names(self):
        return [s.name for s in self.servers.values()]


# tier -> data volumes (name suffix, volume type, GiB) attached in order.
DATA_VOLUMES = {'db': (('data', 'standard', 1), ('log', 'fast', 1)),
                'app': (('data', 'standard', 1),)}
# Tiers that boot from a volume made from the image.
VOLUME_BOOTED = ('db',)
ROOT_VOLUME_GIB = 1


def build(conn, prefix='3t', wait=180, volumes=False):
    """Create the 3-tier project in ``conn``'s project; returns ThreeTier.

    Servers are ACTIVE (and their volumes attached) on return.  Raises on
    any failure (the caller cleans up with :func:`delete`).
    """
    net = conn.network
    public = net.find_network(bootstrap.EXTERNAL_NETWORK, ignore_missing=False)
    networks, subnets = {}, {}
    for tier, cidr in (('web', '10.10.1.0/24'), ('app', '10.10.2.0/24')):
        networks[tier] = net.create_network(name='%s-%s-net' % (prefix, tier),
                                            mtu=1400)
        subnets[tier] = net.create_subnet(
            network_id=networks[tier].id, name='%s-%s-subnet' % (prefix, tier),
            ip_version=4, cidr=cidr, gateway_ip=cidr.replace('0/24', '1'),
            allocation_pools=[{'start': cidr.replace('0/24', '100'),
                               'end': cidr.replace('0/24', '200')}],
            dns_nameservers=['192.0.2.53'],
            host_routes=[{'destination': '198.51.100.0/24',
                          'nexthop': cidr.replace('0/24', '254')}])
    router = net.create_router(name='%s-router' % prefix,
                               external_gateway_info={'network_id': public.id})
    for tier in ('web', 'app'):
        net.add_interface_to_router(router, subnet_id=subnets[tier].id)
    router = net.update_router(router, routes=[
        {'destination': '203.0.113.0/24', 'nexthop': '10.10.2.254'}])

    groups = {tier: net.create_security_group(
        name='%s-%s-sg' % (prefix, tier), description='%s tier' % tier)
        for tier in ('web', 'app', 'db')}
    rules = (
        ('web', {'protocol': 'tcp', 'port_range_min': 80,
                 'port_range_max': 80, 'remote_ip_prefix': '0.0.0.0/0'}),
        ('web', {'protocol': 'tcp', 'port_range_min': 22,
                 'port_range_max': 22, 'remote_ip_prefix': '0.0.0.0/0'}),
        ('web', {'protocol': 'icmp', 'remote_group_id': groups['app'].id}),
        ('app', {'protocol': 'tcp', 'port_range_min': 8080,
                 'port_range_max': 8080, 'remote_group_id': groups['web'].id}),
        ('db', {'protocol': 'tcp', 'port_range_min': 5432,
                'port_range_max': 5432, 'remote_group_id': groups['app'].id}),
    )
    for tier, rule in rules:
        net.create_security_group_rule(security_group_id=groups[tier].id,
                                       direction='ingress', ethertype='IPv4',
                                       **rule)
    keypair = conn.compute.create_keypair(name='%s-key' % prefix,
                                          public_key=public_key())

    layout = (('web', 'web', '10.10.1.10'), ('app', 'app', '10.10.2.10'),
              ('db', 'app', '10.10.2.20'))
    ports, servers = {}, {}
    flavor = conn.compute.find_flavor('m1.tiny', ignore_missing=False)
    image = conn.image.find_image(bootstrap.IMAGE_NAME, ignore_missing=False)
    for tier, network, address in layout:
        pairs = ([{'ip_address': '10.10.1.50'}] if tier == 'web' else [])
        ports[tier] = net.create_port(
            network_id=networks[network].id, name='%s-%s-port' % (prefix, tier),
            fixed_ips=[{'subnet_id': subnets[network].id,
                        'ip_address': address}],
            security_group_ids=[groups[tier].id],
            allowed_address_pairs=pairs)
        boot = {'image_id': image.id}
        if volumes and tier in VOLUME_BOOTED:
            boot = {'block_device_mapping': [{
                'boot_index': 0, 'uuid': image.id, 'source_type': 'image',
                'destination_type': 'volume',
                'volume_size': ROOT_VOLUME_GIB,
                'delete_on_termination': True}]}
        servers[tier] = conn.compute.create_server(
            name='%s-%s' % (prefix, tier), flavor_id=flavor.id,
            key_name=keypair.name, networks=[{'port': ports[tier].id}],
            metadata={'tier': tier, 'app': prefix}, **boot)
    data = {}
    if volumes:
        for tier, specs in DATA_VOLUMES.items():
            data[tier] = [conn.block_storage.create_volume(
                name='%s-%s-%s' % (prefix, tier, suffix), size=size,
                volume_type=volume_type,
                description='%s volume of the %s tier' % (suffix, tier),
                metadata={'tier': tier, 'app': prefix})
                for suffix, volume_type, size in specs]
    for tier in servers:
        servers[tier] = conn.compute.wait_for_server(servers[tier], wait=wait)
    attached = {}
    for tier, server in servers.items():
        attached[tier] = [conn.block_storage.get_volume(a['id'])
                          for a in server.attached_volumes or ()]
        for volume in data.get(tier, ()):
            conn.block_storage.wait_for_status(volume, 'available',
                                               failures=['error'], wait=wait)
            # One at a time: the guest's device names follow this order.
            conn.compute.create_volume_attachment(server, volume_id=volume.id)
            attached[tier].append(conn.block_storage.wait_for_status(
                volume, 'in-use', failures=['error'], wait=wait))
    floating_ip = net.create_ip(floating_network_id=public.id,
                                port_id=ports['web'].id)
    return ThreeTier(prefix, networks, subnets, router, groups, keypair.name,
                     ports, servers, floating_ip,
                     {t: v for t, v in attached.items() if v})


def _delete_volumes(conn, prefix, wait):
    """Volumes named PREFIX-... (and their snapshots), and boot volumes
    Nova made for the scenario's servers that are left over."""
    try:
        storage = conn.block_storage
        found = [v for v in storage.volumes()
                 if (v.name or '').startswith(prefix + '-') and
                 v.name[len(prefix) + 1:].split('-')[0] in DATA_VOLUMES]
    except Exception:  # a cloud without Cinder: nothing to delete
        return
    for volume in found:
        for snapshot in storage.snapshots(volume_id=volume.id):
            storage.delete_snapshot(snapshot, ignore_missing=True)
            storage.wait_for_delete(snapshot, wait=wait)
        if volume.status in ('in-use', 'attaching', 'detaching'):
            storage.reset_volume_status(volume, status='available',
                                        attach_status='detached',
                                        migration_status=None)
        storage.delete_volume(volume, ignore_missing=True)
    for volume in found:
        storage.wait_for_delete(volume, wait=wait)


def delete(conn, prefix='3t', wait=180):
    """Delete everything :func:`build` makes with ``prefix`` (idempotent)."""
    net, compute = conn.network, conn.compute
    servers = [s for s in compute.servers() if s.name.startswith(prefix + '-')
               and s.name[len(prefix) + 1:] in ('web', 'app', 'db')]
    for server in servers:
        compute.delete_server(server, ignore_missing=True)
    for server in servers:
        compute.wait_for_delete(server, wait=wait)
    _delete_volumes(conn, prefix, wait)
    for fip in net.ips():
        port = fip.port_id and net.get_port(fip.port_id)
        if port and (port.name or '').startswith(prefix + '-'):
            net.delete_ip(fip)
    router = net.find_router('%s-router' % prefix, ignore_missing=True)
    if router is not None:
        net.update_router(router, routes=[])
        for port in net.ports(device_id=router.id,
                              device_owner='network:router_interface'):
            for fixed in port.fixed_ips:
                net.remove_interface_from_router(router,
                                                 subnet_id=fixed['subnet_id'])
        net.delete_router(router)
    for port in net.ports():
        if (port.name or '').startswith(prefix + '-'):
            net.delete_port(port)
    for tier in ('web', 'app'):
        network = net.find_network('%s-%s-net' % (prefix, tier),
                                   ignore_missing=True)
        if network is not None:
            for port in net.ports(network_id=network.id):
                net.delete_port(port)
            net.delete_network(network)
    groups = [g for g in net.security_groups()
              if g.name in ('%s-web-sg' % prefix, '%s-app-sg' % prefix,
                            '%s-db-sg' % prefix)]
    for group in groups:  # drop cross references first
        for rule in net.security_group_rules(security_group_id=group.id):
            if rule.remote_group_id:
                net.delete_security_group_rule(rule)
    for group in groups:
        net.delete_security_group(group)
    compute.delete_keypair('%s-key' % prefix, ignore_missing=True)
    # Images a migration of the scenario left (snapshots, copies).
    for image in conn.image.images(owner=conn.current_project_id):
        if (image.name or '').startswith('om-%s-' % prefix):
            conn.image.delete_image(image, ignore_missing=True)
