"""Rebuild a plan's network world at the destination, idempotently.

Every Neutron resource created here carries two tags, ``overcloud-migrate``
and ``om:src:<source id>``, and its ID is written to the journal's ID map
right after it is created.  A second run finds each resource again (journal
first, then tag) and creates nothing.  Before each create the journal
gets an intent row (an empty destination ID): if the process dies between
Neutron's answer and the journal, the next run finds that row and adopts the
one untagged resource the create made (same name; for ports, same MAC on the
same network) instead of making a second one.  Nova resources without tags are found
by name: flavors (same name, or the ``--flavor-map`` name) and keypairs
(same name and public key).

With ``dry_run`` the same walk happens without a single write; the rows then
say what would be done, in the same columns as a real run.

The module stays whole (a little over 600 lines): the Replicator is one
ordered walk over the network world, kind by kind, that shares its ID map,
intent rows and report rows; its plain helpers are in
:mod:`overcloud_migrate.plan.attributes`.
"""

import dataclasses
import ipaddress

from openstack import exceptions as sdk_exc

from overcloud_migrate import exceptions
from overcloud_migrate import faults
from overcloud_migrate.plan import attributes

MARK_TAG = 'overcloud-migrate'
TAG_PREFIX = 'om:src:'
#: the journal's destination ID while a create is in flight
PENDING = ''

COLUMNS = ('Type', 'Name', 'Source ID', 'Action', 'Destination ID', 'Status')


class ReplicationError(exceptions.OvercloudMigrateError):
    """A destination write failed; the message names the resource."""


@dataclasses.dataclass
class Row:
    type: str
    name: str
    source_id: str
    action: str          # create, reuse, map, skip, update
    dest_id: str = ''
    status: str = ''     # planned, created, exists, mapped, skipped, ...

    def as_dict(self):
        """This row as a record of a run (the keys of its fields)."""
        record = dataclasses.asdict(self)
        record['dest_id'] = self.dest_id or ''
        return record


def source_tag(source_id):
    return TAG_PREFIX + source_id


class Replicator:
    """Walks a plan and makes the destination match it.

    ``ids`` maps (kind, source id) to the destination id once known; later
    steps (servers, in the workflow) read it too.
    """

    def __init__(self, plan, dest, journal, source_key, dest_key,
                 migration_id=None, admin=False, dry_run=False,
                 floating_ip_mode='keep', progress=None):
        self.plan = plan
        self.dest = dest
        self.journal = journal
        self.source_key = source_key
        self.dest_key = dest_key
        self.migration_id = migration_id
        self.admin = admin
        self.dry_run = dry_run
        self.floating_ip_mode = floating_ip_mode
        self.progress = progress or (lambda message: None)
        self.ids = {}
        self.rows = []
        self._dest_project = None

    # -- the walk -------------------------------------------------------

    def run(self):
        self.flavors()
        self.keypairs()
        self.security_groups()
        self.networks()
        self.subnets()
        self.routers()
        self.ports()
        self.floating_ips()
        return self.rows

    def _row(self, kind, name, source_id, action, dest_id, status=None):
        if status is None:
            status = 'planned' if self.dry_run else {
                'create': 'created', 'reuse': 'exists', 'map': 'mapped',
                'skip': 'skipped', 'update': 'updated'}.get(action, action)
        row = Row(kind, name, source_id, action, dest_id or '', status)
        self.rows.append(row)
        if not self.dry_run:
            self.progress('%s %s %s -> %s' % (action, kind, name or source_id,
                                              dest_id or '-'))
        return row

    @property
    def dest_project(self):
        if self._dest_project is None:
            self._dest_project = self.dest.current_project_id
        return self._dest_project

    # -- lookups by journal and tag -------------------------------------

    _LISTERS = {'network': 'networks', 'subnet': 'subnets',
                'router': 'routers', 'security_group': 'security_groups',
                'port': 'ports', 'floating_ip': 'ips'}
    _GETTERS = {'network': 'get_network', 'subnet': 'get_subnet',
                'router': 'get_router', 'security_group': 'get_security_group',
                'port': 'get_port', 'floating_ip': 'get_ip'}

    def find(self, kind, source_id):
        """Destination resource standing for ``source_id``, or None."""
        net = self.dest.network
        dest_id = self.journal.lookup(self.source_key, self.dest_key, kind,
                                      source_id)
        if dest_id:
            try:
                return getattr(net, self._GETTERS[kind])(dest_id)
            except sdk_exc.NotFoundException:
                if not self.dry_run:
                    self.journal.forget(self.source_key, self.dest_key, kind,
                                        source_id)
        tag = source_tag(source_id)
        found = [r for r in getattr(net, self._LISTERS[kind])(tags=tag)
                 if tag in (r.tags or [])]
        if found:
            if not self.dry_run:
                self.journal.record(self.source_key, self.dest_key, kind,
                                    source_id, found[0].id,
                                    self.migration_id)
            return found[0]
        return None

    def _created(self, kind, source_id, resource):
        """Journal first (a crash after this cannot duplicate), then tag."""
        self.journal.record(self.source_key, self.dest_key, kind, source_id,
                            resource.id, self.migration_id)
        self.dest.network.set_tags(resource, [MARK_TAG,
                                              source_tag(source_id)])
        self.ids[(kind, source_id)] = resource.id

    def _create(self, kind, item, what, call, **attrs):
        try:
            return call(**attrs)
        except sdk_exc.SDKException as exc:
            raise ReplicationError(
                "Creating %s '%s' (source %s) at the destination failed: %s"
                % (what, getattr(item, 'name', '') or '', item.id,
                   attributes.reason(exc)))

    def _ensure(self, kind, source_id, label, create, **same):
        """The destination resource standing for ``source_id``: found again
        (journal, then tag), adopted after an interrupted create (an
        untagged resource matching the filters ``same``), or made by
        ``create()``, which runs only when needed and never on a dry run
        (then the result is None)."""
        found = self.find(kind, source_id)
        if found:
            self.ids[(kind, source_id)] = found.id
            self._row(kind, label, source_id, 'reuse', found.id)
            return found
        if self.dry_run:
            self._row(kind, label, source_id, 'create', None)
            return None
        adopted = self.adoptable(kind, source_id, **same)
        if adopted is not None:
            self._created(kind, source_id, adopted)
            self._row(kind, label, source_id, 'reuse', adopted.id,
                      'adopted after an interrupted run')
            return adopted
        self.journal.record(self.source_key, self.dest_key, kind, source_id,
                            PENDING, self.migration_id)
        created = create()
        faults.kill('after:create:%s' % kind)
        self._created(kind, source_id, created)
        self._row(kind, label, source_id, 'create', created.id)
        return created

    def adoptable(self, kind, source_id, **same):
        """After a create whose result never reached the journal: the one
        untagged resource of ``kind`` matching ``same``, or None."""
        if not same or not all(same.values()) or self.journal.lookup(
                self.source_key, self.dest_key, kind, source_id) != PENDING:
            return None
        lister = getattr(self.dest.network, self._LISTERS[kind])
        candidates = [
            r for r in lister(project_id=self.dest_project, **same)
            if all(getattr(r, k) == v for k, v in same.items())
            and not any(t.startswith(TAG_PREFIX) for t in r.tags or ())]
        return candidates[0] if len(candidates) == 1 else None

    # -- flavors and keypairs -------------------------------------------

    def dest_flavor_name(self, flavor):
        return self.plan.mappings.flavors.get(flavor.name, flavor.name)

    def flavors(self):
        compute = self.dest.compute
        for flavor in self.plan.flavors:
            name = self.dest_flavor_name(flavor)
            found = compute.find_flavor(name, ignore_missing=True)
            if found:
                self.ids[('flavor', flavor.id)] = found.id
                self._row('flavor', name, flavor.id, 'reuse', found.id)
                continue
            if flavor.name in self.plan.mappings.flavors:
                raise ReplicationError(
                    "Flavor '%s' is mapped to '%s', which does not exist at "
                    'the destination.' % (flavor.name, name))
            if not self.admin:
                raise ReplicationError(
                    "Flavor '%s' does not exist at the destination and only "
                    'an admin can create it: ask for it, or map it with '
                    '--flavor-map %s=<existing flavor>.' % (name, flavor.name))
            if self.dry_run:
                # Said in the dry run: only an admin can make it.
                self._row('flavor', name, flavor.id, 'create', None,
                          status='planned (admin only: no flavor of this '
                                 'name at the destination)')
                continue
            created = self._create(
                'flavor', flavor, 'flavor', compute.create_flavor, name=name,
                vcpus=flavor.vcpus, ram=flavor.ram, disk=flavor.disk,
                ephemeral=flavor.ephemeral, swap=flavor.swap or 0,
                is_public=flavor.is_public)
            self.journal.record(self.source_key, self.dest_key, 'flavor',
                                flavor.id, created.id, self.migration_id)
            if flavor.extra_specs:
                compute.create_flavor_extra_specs(created,
                                                  dict(flavor.extra_specs))
            self.ids[('flavor', flavor.id)] = created.id
            self._row('flavor', name, flavor.id, 'create', created.id)

    def keypairs(self):
        compute = self.dest.compute
        for keypair in self.plan.keypairs:
            try:
                found = compute.get_keypair(keypair.name)
            except sdk_exc.NotFoundException:
                found = None
            if found is not None:
                if attributes.same_key(found.public_key, keypair.public_key):
                    self._row('keypair', keypair.name, keypair.name, 'reuse',
                              found.name)
                    continue
                raise ReplicationError(
                    "Keypair '%s' exists at the destination with another "
                    'public key.' % keypair.name)
            if self.dry_run:
                self._row('keypair', keypair.name, keypair.name, 'create',
                          None)
                continue
            created = self._create(
                'keypair', attributes.Named(keypair.name), 'keypair',
                compute.create_keypair, name=keypair.name,
                public_key=keypair.public_key, type=keypair.type)
            self.journal.record(self.source_key, self.dest_key, 'keypair',
                                keypair.name, created.name, self.migration_id)
            self._row('keypair', keypair.name, keypair.name, 'create',
                      created.name)

    # -- security groups ------------------------------------------------

    def security_groups(self):
        net = self.dest.network
        for group in self.plan.security_groups:
            if group.name == 'default':
                found = net.find_security_group(
                    'default', project_id=self.dest_project,
                    ignore_missing=True)
                if found is None:
                    raise ReplicationError('The destination project has no '
                                           "'default' security group.")
                self.ids[('security_group', group.id)] = found.id
                self._row('security_group', group.name, group.id, 'map',
                          found.id)
                continue
            self._ensure(
                'security_group', group.id, group.name,
                lambda group=group: self._create(
                    'security_group', group, 'security group',
                    net.create_security_group, name=group.name,
                    description=group.description, stateful=group.stateful),
                name=group.name)
        for group in self.plan.security_groups:
            self._rules(group)

    def _rules(self, group):
        net = self.dest.network
        dest_group = self.ids.get(('security_group', group.id))
        existing = set()
        if dest_group:
            for rule in net.security_group_rules(
                    security_group_id=dest_group):
                existing.add(attributes.rule_signature(rule))
        for rule in group.rules:
            remote = None
            if rule.remote_group_id:
                remote = self.ids.get(('security_group', rule.remote_group_id))
            signature = rule.signature(
                remote_group=(remote or '?') if rule.remote_group_id else None)
            label = '%s: %s' % (group.name, attributes.describe_rule(rule, self.plan))
            if dest_group and signature in existing:
                self._row('security_group_rule', label, group.id, 'reuse',
                          dest_group)
                continue
            if self.dry_run:
                self._row('security_group_rule', label, group.id, 'create',
                          None)
                continue
            attrs = {k: v for k, v in (
                ('protocol', rule.protocol),
                ('port_range_min', rule.port_range_min),
                ('port_range_max', rule.port_range_max),
                ('remote_ip_prefix', rule.remote_ip_prefix),
                ('remote_group_id', remote)) if v is not None}
            if rule.description:
                attrs['description'] = rule.description
            created = self._create(
                'security_group_rule', attributes.Named(label, group.id),
                'security group rule', net.create_security_group_rule,
                security_group_id=dest_group, direction=rule.direction,
                ethertype=rule.ethertype, **attrs)
            existing.add(signature)
            self._row('security_group_rule', label, group.id, 'create',
                      created.id)

    # -- networks and subnets -------------------------------------------

    def network_mapping(self, network):
        """Destination network name/ID to map to, or None to create."""
        mapped = self.plan.mappings.networks
        for key in (network.id, network.name):
            if key and key in mapped:
                return mapped[key]
        if network.external:
            return self.external_network()
        if not network.owned:
            return network.name  # a shared/provider network: same name
        return None

    def external_network(self):
        """The destination external network (mapped, or the only one)."""
        net = self.dest.network
        wanted = self.plan.mappings.external_network
        if wanted:
            return wanted
        externals = [n for n in net.networks(is_router_external=True)]
        if len(externals) == 1:
            return externals[0].id
        names = ', '.join(sorted(n.name or n.id for n in externals)) or 'none'
        raise ReplicationError(
            'Cannot choose the destination external network (found: %s): '
            'give --external-network NAME.' % names)

    def networks(self):
        net = self.dest.network
        for network in self.plan.networks:
            target = self.network_mapping(network)
            if target is not None:
                found = net.find_network(target, ignore_missing=True)
                if found is None:
                    raise ReplicationError(
                        "Network '%s' is mapped to '%s', which does not exist "
                        'at the destination.' % (network.name, target))
                self.ids[('network', network.id)] = found.id
                self._row('network', network.name, network.id, 'map',
                          found.id)
                continue
            self._ensure('network', network.id, network.name,
                         lambda network=network: self._create(
                             'network', network, 'network',
                             net.create_network,
                             **self._network_attrs(network)),
                         name=network.name)

    def _network_attrs(self, network):
        attrs = {'name': network.name, 'description': network.description,
                 'is_admin_state_up': network.admin_state_up,
                 'is_port_security_enabled': network.port_security_enabled}
        if network.mtu:
            attrs['mtu'] = network.mtu
        if network.shared and self.admin:
            attrs['is_shared'] = True
        return attrs

    def subnets(self):
        net = self.dest.network
        for subnet in self.plan.subnets:
            network = self.plan.by_id('networks', subnet.network_id)
            dest_net = self.ids.get(('network', subnet.network_id))
            if self.network_mapping(network) is not None:
                match = None
                if dest_net:
                    match = next((s for s in net.subnets(network_id=dest_net)
                                  if s.cidr == subnet.cidr), None)
                self.ids[('subnet', subnet.id)] = match.id if match else None
                self._row('subnet', subnet.name, subnet.id,
                          'map' if match else 'skip',
                          match.id if match else None)
                continue
            self._ensure('subnet', subnet.id, subnet.name,
                         lambda subnet=subnet, dest_net=dest_net: self._create(
                             'subnet', subnet, 'subnet', net.create_subnet,
                             **attributes.subnet_attrs(subnet, dest_net)),
                         name=subnet.name, network_id=dest_net,
                         cidr=subnet.cidr)

    # -- routers --------------------------------------------------------

    def routers(self):
        net = self.dest.network
        for router in self.plan.routers:
            gateway = None
            if router.external_network_id:
                ext = self.plan.by_id('networks', router.external_network_id)
                target = (self.network_mapping(ext) if ext
                          else self.external_network())
                dest_ext = net.find_network(target, ignore_missing=True)
                if dest_ext is None:
                    raise ReplicationError(
                        "The destination external network '%s' for router "
                        "'%s' does not exist." % (target, router.name))
                gateway = {'network_id': dest_ext.id}
                if router.enable_snat is not None and self.admin:
                    gateway['enable_snat'] = router.enable_snat
            attrs = {'name': router.name, 'description': router.description,
                     'is_admin_state_up': router.admin_state_up}
            if gateway:
                attrs['external_gateway_info'] = gateway
            dest_router = self._ensure(
                'router', router.id, router.name,
                lambda router=router, attrs=attrs: self._create(
                    'router', router, 'router', net.create_router, **attrs),
                name=router.name)
            self._interfaces(router, dest_router)
            self._routes(router, dest_router)

    def _interfaces(self, router, dest_router):
        net = self.dest.network
        present = set()
        if dest_router is not None:
            for port in net.ports(device_id=dest_router.id,
                                  device_owner='network:router_interface'):
                present.update(f['subnet_id'] for f in port.fixed_ips or [])
        for interface in router.interfaces:
            subnet = self.plan.by_id('subnets', interface.subnet_id)
            dest_subnet = self.ids.get(('subnet', interface.subnet_id))
            label = '%s: %s' % (router.name, interface.ip_address)
            if dest_subnet and dest_subnet in present:
                self._row('router_interface', label, interface.subnet_id,
                          'reuse', dest_subnet)
                continue
            if self.dry_run:
                self._row('router_interface', label, interface.subnet_id,
                          'create', None)
                continue
            try:
                if interface.ip_address == subnet.gateway_ip:
                    net.add_interface_to_router(dest_router,
                                                subnet_id=dest_subnet)
                else:
                    port = net.create_port(
                        network_id=self.ids[('network', subnet.network_id)],
                        fixed_ips=[{'subnet_id': dest_subnet,
                                    'ip_address': interface.ip_address}])
                    net.add_interface_to_router(dest_router, port_id=port.id)
            except sdk_exc.SDKException as exc:
                raise ReplicationError(
                    "Adding interface %s of router '%s' at the destination "
                    'failed: %s' % (interface.ip_address, router.name,
                                    attributes.reason(exc)))
            self._row('router_interface', label, interface.subnet_id,
                      'create', dest_subnet)

    def _routes(self, router, dest_router):
        if not router.routes:
            return
        # Neutron accepts only next hops on a subnet the router is on; the
        # plan holds the interfaces on the migrated servers' subnets.
        cidrs = [ipaddress.ip_network(self.plan.by_id('subnets',
                                                      i.subnet_id).cidr)
                 for i in router.interfaces
                 if self.plan.by_id('subnets', i.subnet_id)]
        wanted, dropped = [], []
        for route in router.routes:
            hop = ipaddress.ip_address(route['nexthop'])
            pair = (route['destination'], route['nexthop'])
            (wanted if any(hop in c for c in cidrs) else dropped).append(pair)
        for destination, nexthop in dropped:
            self._row('router_routes', '%s: %s via %s' % (
                router.name, destination, nexthop), router.id, 'skip',
                dest_router.id if dest_router else None,
                'skipped: next hop on no migrated subnet')
        if not wanted:
            return
        wanted.sort()
        have = sorted((r['destination'], r['nexthop'])
                      for r in (dest_router.routes if dest_router else [])
                      or [])
        label = '%s: %d routes' % (router.name, len(wanted))
        if have == wanted:
            self._row('router_routes', label, router.id, 'reuse',
                      dest_router.id)
            return
        if self.dry_run:
            self._row('router_routes', label, router.id, 'update',
                      dest_router.id if dest_router else None)
            return
        try:
            self.dest.network.update_router(dest_router, routes=[
                {'destination': d, 'nexthop': n} for d, n in wanted])
        except sdk_exc.SDKException as exc:
            raise ReplicationError("Setting the static routes of router '%s' "
                                   'at the destination failed: %s'
                                   % (router.name, attributes.reason(exc)))
        self._row('router_routes', label, router.id, 'update', dest_router.id)

    # -- ports and floating IPs -----------------------------------------

    def ports(self):
        net = self.dest.network
        for port in self.plan.ports:
            label = port.name or ', '.join(f.ip_address
                                           for f in port.fixed_ips)
            self._ensure('port', port.id, label,
                         lambda port=port, label=label: self._create(
                             'port', attributes.Named(label, port.id), 'port',
                             net.create_port, **self._port_attrs(port)),
                         **({'mac_address': port.mac_address,
                             'network_id': self.ids.get(
                                 ('network', port.network_id))}
                            if port.mac_address else {}))

    def _port_attrs(self, port):
        attrs = {'network_id': self.ids[('network', port.network_id)],
                 'name': port.name, 'description': port.description,
                 'is_port_security_enabled': port.port_security_enabled,
                 'allowed_address_pairs': port.allowed_address_pairs}
        fixed = [{'subnet_id': self.ids.get(('subnet', f.subnet_id)),
                  'ip_address': f.ip_address} for f in port.fixed_ips
                 if self.ids.get(('subnet', f.subnet_id))]
        if fixed:
            attrs['fixed_ips'] = fixed
        if port.mac_address:
            attrs['mac_address'] = port.mac_address
        if port.port_security_enabled:
            attrs['security_group_ids'] = [
                self.ids[('security_group', g)]
                for g in port.security_group_ids]
        return attrs

    def floating_ips(self):
        net = self.dest.network
        for fip in self.plan.floating_ips:
            label = fip.floating_ip_address
            if self.floating_ip_mode == 'none':
                self._row('floating_ip', label, fip.id, 'skip', None)
                continue
            found = self.find('floating_ip', fip.id)
            if found:
                self.ids[('floating_ip', fip.id)] = found.id
                self._row('floating_ip', found.floating_ip_address, fip.id,
                          'reuse', found.id)
                continue
            if self.dry_run:
                self._row('floating_ip', label, fip.id, 'create', None)
                continue
            ext = self.plan.by_id('networks', fip.floating_network_id)
            target = (self.network_mapping(ext) if ext
                      else self.external_network())
            dest_ext = net.find_network(target, ignore_missing=False)
            attrs = {'floating_network_id': dest_ext.id,
                     'description': fip.description}
            if fip.port_id and self.ids.get(('port', fip.port_id)):
                attrs['port_id'] = self.ids[('port', fip.port_id)]
            created, status = None, None
            if self.floating_ip_mode == 'keep' and self.admin:
                try:
                    created = net.create_ip(
                        floating_ip_address=fip.floating_ip_address, **attrs)
                except sdk_exc.SDKException as exc:
                    status = 'new address (%s)' % attributes.reason(exc)
            elif self.floating_ip_mode == 'keep':
                status = 'new address (keeping it needs admin)'
            if created is None:
                created = self._create('floating_ip', attributes.Named(label, fip.id),
                                       'floating IP', net.create_ip, **attrs)
            self._created('floating_ip', fip.id, created)
            self._row('floating_ip', created.floating_ip_address, fip.id,
                      'create', created.id, status)
