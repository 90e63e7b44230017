"""Source inventory: read the named servers and their network world.

Turns an openstacksdk connection to the source cloud into a
:class:`~overcloud_migrate.plan.model.Plan`.  Read-only.
"""

from openstack import exceptions as sdk_exc

from overcloud_migrate import exceptions
from overcloud_migrate.plan import model

# Image properties worth carrying to the destination.
IMAGE_PROPERTY_PREFIXES = ('hw_', 'os_', 'img_', 'architecture',
                           'hypervisor_type', 'vm_mode', 'auto_disk_config')


class InventoryError(exceptions.OvercloudMigrateError):
    """The source cannot be read as asked; the message says what."""


def find_servers(conn, refs, all_servers=False):
    """Servers by name or ID (or all of the project); every miss at once."""
    if all_servers:
        return list(conn.compute.servers(details=True))
    servers, missing = [], []
    for ref in refs:
        try:
            server = conn.compute.find_server(ref, ignore_missing=True)
        except sdk_exc.DuplicateResource:
            raise InventoryError("More than one server is named '%s' in the "
                                 'source project: give its ID.' % ref)
        if server is None:
            missing.append(ref)
        else:
            servers.append(conn.compute.get_server(server.id))
    if missing:
        raise InventoryError('No server with the name or ID %s in the source '
                             'project.' % ', '.join("'%s'" % m
                                                    for m in missing))
    seen, unique = set(), []
    for server in servers:
        if server.id not in seen:
            seen.add(server.id)
            unique.append(server)
    return unique


def build_plan(conn, identity, servers, mappings=None):
    """A Plan for ``servers`` (openstacksdk Server objects)."""
    plan = model.Plan(source=model.CloudRef(
        name=identity.name, auth_url=identity.auth_url,
        project=identity.project, region=identity.region),
        mappings=mappings or model.Mappings())
    reader = _Reader(conn, plan, identity.project)
    for server in servers:
        reader.add_server(server)
    reader.add_routers()
    reader.add_security_group_closure()
    return plan


def _true(value):
    """Cinder returns ``bootable`` as the string 'true' or 'false'."""
    if isinstance(value, str):
        return value.strip().lower() == 'true'
    return bool(value)


def _device_order(device):
    """Sort key for device names: /dev/vda < /dev/vdb < ... < /dev/vdaa."""
    name = (device or '').rsplit('/', 1)[-1]
    return (len(name), name)


class _Reader:

    def __init__(self, conn, plan, project_id):
        self.conn = conn
        self.plan = plan
        self.project_id = project_id
        self.seen = set()

    def _once(self, kind, key):
        if (kind, key) in self.seen:
            return False
        self.seen.add((kind, key))
        return True

    # -- servers ----------------------------------------------------------

    def add_server(self, server):
        net = self.conn.network
        flavor = self._add_flavor(server)
        image_id = (server.image or {}).get('id') if server.image else None
        ports = list(net.ports(device_id=server.id))
        groups = []
        for port in ports:
            self.add_port(port)
            groups.extend(g for g in port.security_group_ids or []
                          if g not in groups)
        if server.key_name:
            self._add_keypair(server.key_name)
        if image_id:
            self._add_image(image_id)
        volumes = self._add_volumes(server, boot_from_volume=not image_id)
        self.plan.servers.append(model.Server(
            id=server.id, name=server.name, flavor_id=flavor,
            boot_source='image' if image_id else 'volume',
            image_id=image_id or None, key_name=server.key_name or None,
            security_groups=groups, metadata=dict(server.metadata or {}),
            availability_zone=server.availability_zone or None,
            port_ids=[p.id for p in ports], volumes=volumes,
            status=server.status or '',
            description=server.description or None,
            tags=list(server.tags or [])))

    def _add_volumes(self, server, boot_from_volume):
        """The server's volume attachments, each volume read once.

        The boot volume is the one on the server's root device name (Nova
        reports it to admins), else, for a server with no image, the
        bootable volume on the first device.  Multi-attach and encrypted
        volumes are refused here, before anything is planned.
        """
        attachments = sorted(
            self.conn.compute.volume_attachments(server),
            key=lambda a: _device_order(a.device))
        if not attachments:
            return []
        root_device = getattr(server, 'root_device_name', None)
        result = []
        for attachment in attachments:
            volume = self._add_volume(server, attachment.volume_id)
            result.append(model.VolumeAttachment(
                volume_id=volume.id, device=attachment.device or None,
                delete_on_termination=bool(
                    attachment.delete_on_termination)))
        if boot_from_volume:
            boot = [a for a in result if root_device and
                    a.device == root_device]
            if not boot:
                bootable = [a for a in result
                            if self.plan.by_id('volumes', a.volume_id)
                            .bootable]
                boot = bootable[:1] or result[:1]
            boot[0].boot_index = 0
        return result

    def _add_volume(self, server, volume_id):
        known = self.plan.by_id('volumes', volume_id)
        if known is not None:
            # A volume on two servers of the plan is a multi-attach one.
            raise InventoryError(
                "Volume '%s' (%s) is attached to more than one server; "
                'multi-attach volumes cannot be migrated.'
                % (known.name or known.id, known.id))
        try:
            volume = self.conn.block_storage.get_volume(volume_id)
        except sdk_exc.NotFoundException:
            raise InventoryError(
                "Volume %s attached to server '%s' cannot be read in the "
                'source project.' % (volume_id, server.name))
        label = "Volume '%s' (%s) of server '%s'" % (
            volume.name or volume.id, volume.id, server.name)
        if volume.is_multiattach:
            raise InventoryError(
                '%s is multi-attach; multi-attach volumes cannot be migrated '
                '(their writers would be split between two clouds).' % label)
        if volume.is_encrypted:
            raise InventoryError(
                '%s is encrypted; encrypted volumes cannot be migrated (their '
                'key stays in the source key manager).' % label)
        record = model.Volume(
            id=volume.id, size=int(volume.size or 0), name=volume.name or '',
            description=volume.description or '',
            volume_type=volume.volume_type or None,
            bootable=_true(volume.is_bootable),
            availability_zone=volume.availability_zone or None,
            metadata=dict(volume.metadata or {}),
            image_metadata=dict(volume.volume_image_metadata or {}),
            status=volume.status or '')
        self.plan.volumes.append(record)
        return record

    def _add_flavor(self, server):
        flavor = server.flavor
        # Since compute API 2.47 the server embeds its flavor (no ID).
        name = flavor.original_name or flavor.name or flavor.id
        if self._once('flavor', name):
            self.plan.flavors.append(model.Flavor(
                id=name, name=name, vcpus=flavor.vcpus or 0,
                ram=flavor.ram or 0, disk=flavor.disk or 0,
                ephemeral=flavor.ephemeral or 0,
                swap=int(flavor.swap or 0),
                extra_specs=dict(flavor.extra_specs or {})))
        return name

    def _add_keypair(self, name):
        if not self._once('keypair', name):
            return
        try:
            keypair = self.conn.compute.get_keypair(name)
        except sdk_exc.NotFoundException:
            # Keypairs belong to users; another user's key is not readable.
            keypair = None
        self.plan.keypairs.append(model.Keypair(
            name=name, public_key=keypair.public_key if keypair else '',
            type=(keypair.type if keypair else None) or 'ssh'))

    def _add_image(self, image_id):
        if not self._once('image', image_id):
            return
        try:
            image = self.conn.image.get_image(image_id)
        except sdk_exc.NotFoundException:
            self.plan.images.append(model.Image(id=image_id, name=''))
            return
        props = {}
        for key, value in (image.properties or {}).items():
            if key.startswith(IMAGE_PROPERTY_PREFIXES) and value is not None:
                props[key] = value
        self.plan.images.append(model.Image(
            id=image.id, name=image.name or '',
            disk_format=image.disk_format,
            container_format=image.container_format, size=image.size,
            hash_algo=image.hash_algo, hash_value=image.hash_value,
            min_disk=image.min_disk or 0, min_ram=image.min_ram or 0,
            properties=props))

    # -- network world ----------------------------------------------------

    def add_port(self, port):
        if not self._once('port', port.id):
            return
        self.add_network(port.network_id)
        self.plan.ports.append(model.Port(
            id=port.id, network_id=port.network_id, name=port.name or '',
            description=port.description or '',
            mac_address=port.mac_address,
            fixed_ips=[model.FixedIP(subnet_id=f['subnet_id'],
                                     ip_address=f['ip_address'])
                       for f in port.fixed_ips or []],
            allowed_address_pairs=[dict(p) for p in
                                   port.allowed_address_pairs or []],
            security_group_ids=list(port.security_group_ids or []),
            port_security_enabled=(port.is_port_security_enabled
                                   if port.is_port_security_enabled
                                   is not None else True)))
        for fip in self.conn.network.ips(port_id=port.id):
            self.plan.floating_ips.append(model.FloatingIP(
                id=fip.id, floating_ip_address=fip.floating_ip_address,
                floating_network_id=fip.floating_network_id, port_id=port.id,
                fixed_ip_address=fip.fixed_ip_address,
                description=fip.description or ''))

    def add_network(self, network_id):
        if not self._once('network', network_id):
            return
        network = self.conn.network.get_network(network_id)
        self.plan.networks.append(model.Network(
            id=network.id, name=network.name or '',
            description=network.description or '', mtu=network.mtu,
            shared=bool(network.is_shared),
            external=bool(network.is_router_external),
            admin_state_up=bool(network.is_admin_state_up),
            port_security_enabled=(network.is_port_security_enabled
                                   if network.is_port_security_enabled
                                   is not None else True),
            owned=network.project_id == self.project_id))
        for subnet in self.conn.network.subnets(network_id=network_id):
            self.plan.subnets.append(model.Subnet(
                id=subnet.id, name=subnet.name or '', network_id=network_id,
                cidr=subnet.cidr, ip_version=subnet.ip_version,
                gateway_ip=subnet.gateway_ip,
                allocation_pools=[dict(p) for p in
                                  subnet.allocation_pools or []],
                dns_nameservers=list(subnet.dns_nameservers or []),
                host_routes=[dict(r) for r in subnet.host_routes or []],
                enable_dhcp=bool(subnet.is_dhcp_enabled),
                ipv6_ra_mode=subnet.ipv6_ra_mode,
                ipv6_address_mode=subnet.ipv6_address_mode,
                description=subnet.description or ''))

    def add_routers(self):
        """Routers with an interface on a subnet of the plan."""
        subnets = {s.id for s in self.plan.subnets}
        routers = {}
        for network in list(self.plan.networks):
            for port in self.conn.network.ports(
                    network_id=network.id,
                    device_owner='network:router_interface'):
                for fixed in port.fixed_ips or []:
                    if fixed['subnet_id'] in subnets:
                        routers.setdefault(port.device_id, []).append(
                            model.RouterInterface(
                                subnet_id=fixed['subnet_id'],
                                ip_address=fixed['ip_address'],
                                port_id=port.id))
        for router_id, interfaces in sorted(routers.items()):
            router = self.conn.network.get_router(router_id)
            gateway = router.external_gateway_info or {}
            self.plan.routers.append(model.Router(
                id=router.id, name=router.name or '',
                description=router.description or '',
                admin_state_up=bool(router.is_admin_state_up),
                external_network_id=gateway.get('network_id'),
                enable_snat=gateway.get('enable_snat'),
                interfaces=sorted(interfaces, key=lambda i: i.subnet_id),
                routes=[dict(r) for r in router.routes or []]))

    def add_security_group_closure(self):
        """The ports' groups and every group their rules refer to."""
        todo = []
        for port in self.plan.ports:
            todo.extend(port.security_group_ids)
        while todo:
            group_id = todo.pop(0)
            if not self._once('security_group', group_id):
                continue
            group = self.conn.network.get_security_group(group_id)
            rules = []
            for rule in group.security_group_rules or []:
                remote = rule.get('remote_group_id')
                if remote:
                    todo.append(remote)
                rules.append(model.SecurityGroupRule(
                    direction=rule['direction'],
                    ethertype=rule.get('ethertype') or 'IPv4',
                    protocol=rule.get('protocol'),
                    port_range_min=rule.get('port_range_min'),
                    port_range_max=rule.get('port_range_max'),
                    remote_ip_prefix=rule.get('remote_ip_prefix'),
                    remote_group_id=remote,
                    description=rule.get('description') or ''))
            self.plan.security_groups.append(model.SecurityGroup(
                id=group.id, name=group.name or '',
                description=group.description or '',
                stateful=(group.stateful if group.stateful is not None
                          else True),
                rules=sorted(rules, key=lambda r: repr(r.signature()))))
