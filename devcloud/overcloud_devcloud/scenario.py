"""The 3-tier project: a realistic small service to migrate.

Two tenant networks (web and app) behind one router with an external
gateway, three security groups that refer to each other, a keypair, three
servers on fixed IPs (web, app, db) and a floating IP on the web server.
Used by the README demo and the functional tests.
"""

import dataclasses

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives import serialization

from overcloud_devcloud import bootstrap

#: seconds between two looks at a server being booted or deleted
#: (openstacksdk's default, 2, adds a second per wait on average)
POLL = 0.5


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

    def server_names(self):
        return [s.name for s in self.servers.values()]


def build(conn, prefix='3t', wait=180):
    """Create the 3-tier project in ``conn``'s project; returns ThreeTier.

    Servers are ACTIVE on return.  Raises on any failure (the caller cleans
    up with :func:`delete`).
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
        servers[tier] = conn.compute.create_server(
            name='%s-%s' % (prefix, tier), flavor_id=flavor.id,
            image_id=image.id, key_name=keypair.name,
            networks=[{'port': ports[tier].id}],
            metadata={'tier': tier, 'app': prefix})
    for tier in servers:
        servers[tier] = conn.compute.wait_for_server(servers[tier], wait=wait,
                                                     interval=POLL)
    floating_ip = net.create_ip(floating_network_id=public.id,
                                port_id=ports['web'].id)
    return ThreeTier(prefix, networks, subnets, router, groups, keypair.name,
                     ports, servers, floating_ip)


def delete(conn, prefix='3t', wait=180):
    """Delete everything :func:`build` makes with ``prefix`` (idempotent)."""
    net, compute = conn.network, conn.compute
    servers = [s for s in compute.servers() if s.name.startswith(prefix + '-')
               and s.name[len(prefix) + 1:] in ('web', 'app', 'db')]
    for server in servers:
        compute.delete_server(server, ignore_missing=True)
    for server in servers:
        compute.wait_for_delete(server, wait=wait, interval=POLL)
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
