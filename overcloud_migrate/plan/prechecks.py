"""Checks of a plan against the destination, before any change.

Every problem is collected (not just the first) so the operator can fix them
all at once; nothing here writes to either cloud.
"""

import dataclasses
import ipaddress

from openstack import exceptions as sdk_exc

from overcloud_migrate.plan import attributes
from overcloud_migrate.plan import cloud_inputs
from overcloud_migrate.plan import replicate
from overcloud_migrate.planner import capacity
from overcloud_migrate.planner import model as planner_model

COLUMNS = ('Type', 'Name', 'Source ID', 'Problem')
RUNNABLE_STATES = ('ACTIVE', 'SHUTOFF')
# The first Nova API microversion that takes ``host`` in a create request.
HOST_MICROVERSION = (2, 74)
# block_device_mapping_v2 with volume sources (Nova API 2.1 and later).
BFV_MICROVERSION = (2, 1)
PIN_NEEDS_ADMIN = ('booting a server on a chosen destination host (--pin-hosts '
                   'or dest_host in the plan) needs the admin role at the '
                   'destination')


@dataclasses.dataclass
class Problem:
    type: str
    name: str
    source_id: str
    problem: str

    def as_tuple(self):
        return (self.type, self.name, self.source_id, self.problem)


def _max_microversion(conn):
    """The destination Compute API's highest microversion as (major,
    minor), or None when it does not say."""
    data = conn.compute.get_endpoint_data()
    text = getattr(data, 'max_microversion', None) if data else None
    if not text:
        return None
    if isinstance(text, tuple):
        return tuple(int(v) for v in text[:2])
    major, _dot, minor = str(text).partition('.')
    return int(major), int(minor or 0)


def _room(host):
    if host is None:
        return 'it has no Placement inventory'
    parts = []
    for value, unit in zip((host.vcpus, host.ram_mb, host.disk_gb),
                           ('vCPU', 'MB RAM', 'GB disk')):
        parts.append('unlimited %s' % unit if value is None
                     else '%d %s' % (value, unit))
    return ', '.join(parts)


def format_table(problems):
    """Problems as a plain-text table, for an error message."""
    rows = [COLUMNS] + [p.as_tuple() for p in problems]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        lines.append('  '.join(str(v).ljust(w) for v, w in zip(row, widths))
                     .rstrip())
        if n == 0:
            lines.append('  '.join('-' * w for w in widths))
    return '\n'.join(lines)


class Prechecks:

    def __init__(self, plan, dest, journal, source_key, dest_key, admin,
                 source=None, migrated=(), copies_at_source=True):
        self.plan = plan
        # False: the volumes' data path makes nothing at the source (warm
        # migration reads them where they are)
        self.copies_at_source = copies_at_source
        # IDs of servers whose copy is already ACTIVE at the destination:
        # they need no room on their host.
        self.migrated = set(migrated)
        self.dest = dest
        self.source = source
        self.admin = admin
        # A dry-run replicator knows how resources are found again.
        self.replicator = replicate.Replicator(
            plan, dest, journal, source_key, dest_key, admin=admin,
            dry_run=True)
        self.problems = []

    def add(self, kind, name, source_id, text):
        self.problems.append(Problem(kind, name or '', source_id or '', text))

    def run(self):
        for check in (self.servers, self.dest_hosts, self.flavors,
                      self.keypairs,
                      self.networks, self.external_network,
                      self.name_collisions, self.cidr_overlaps,
                      self.compute_quota, self.network_quota,
                      self.volumes, self.volume_quota,
                      self.source_volume_quota):
            try:
                check()
            except sdk_exc.SDKException as exc:
                self.add('cloud', '', '', 'the destination answered %s while '
                         'checking %s' % (attributes.reason(exc),
                                          check.__name__.replace('_', ' ')))
        return self.problems

    # -- servers ----------------------------------------------------------

    def servers(self):
        for server in self.plan.servers:
            if self.source is not None:
                try:
                    current = self.source.compute.get_server(server.id)
                except sdk_exc.NotFoundException:
                    self.add('server', server.name, server.id,
                             'no longer exists in the source cloud')
                    continue
                status = current.status
            else:
                status = server.status
            if status and status not in RUNNABLE_STATES:
                self.add('server', server.name, server.id,
                         'is %s at the source; only ACTIVE or SHUTOFF servers '
                         'can be migrated' % status)

    def dest_hosts(self):
        """Pinned servers: the host exists, is up and enabled, has room."""
        pinned = [s for s in self.plan.servers
                  if s.dest_host and s.id not in self.migrated]
        if not pinned:
            return
        if not self.admin:
            self.add('server', ', '.join(s.name for s in pinned), '',
                     PIN_NEEDS_ADMIN)
            return
        version = _max_microversion(self.dest)
        if version is not None and version < HOST_MICROVERSION:
            self.add('cloud', '', '', 'the destination Compute API goes up '
                     'to microversion %d.%d; booting on a chosen host needs '
                     '%d.%d' % (version + HOST_MICROVERSION))
            return
        hosts = cloud_inputs.compute_hosts(self.dest)
        try:
            free = capacity.hosts_from_placement(
                cloud_inputs.placement_providers(self.dest))
        except planner_model.PlannerError:
            free = []
        on_host = {}
        for server in pinned:
            host = hosts.get(server.dest_host)
            if host is None:
                self.add('server', server.name, server.id,
                         "destination host '%s' is not a compute host of the "
                         'destination (known: %s)' % (
                             server.dest_host,
                             ', '.join(sorted(hosts)) or 'none'))
            elif host.state != 'up':
                self.add('server', server.name, server.id,
                         "destination host '%s' is down" % server.dest_host)
            elif host.status != 'enabled':
                self.add('server', server.name, server.id,
                         "destination host '%s' is disabled"
                         % server.dest_host)
            else:
                on_host.setdefault(host, []).append(server)
        for host, servers in on_host.items():
            room = capacity.free_on(free, set(host.nodes) | {host.name})
            need = [0, 0, 0]
            for server in servers:
                for i, value in enumerate(self._demand(server)):
                    need[i] += value
            have = room.capacity if room else (0, 0, 0)
            if all(n <= h for n, h in zip(need, have)):
                continue
            text = ("destination host '%s' lacks capacity: %s planned there "
                    'need %d vCPU, %d MB RAM, %d GB disk; %s free' % (
                        host.name, ', '.join(s.name for s in servers),
                        need[0], need[1], need[2], _room(room)))
            for server in servers:
                self.add('server', server.name, server.id, text)

    def _demand(self, server):
        """vCPU, RAM MB, disk GB of ``server``'s destination flavor."""
        flavor = self.plan.by_id('flavors', server.flavor_id)
        found = self.dest.compute.find_flavor(
            self.replicator.dest_flavor_name(flavor), ignore_missing=True)
        size = found if found is not None else flavor
        return (size.vcpus or 0, size.ram or 0,
                (size.disk or 0) + (getattr(size, 'ephemeral', 0) or 0))

    def flavors(self):
        for flavor in self.plan.flavors:
            name = self.replicator.dest_flavor_name(flavor)
            if self.dest.compute.find_flavor(name, ignore_missing=True):
                continue
            if flavor.name in self.plan.mappings.flavors:
                # A mapping names an existing flavor; a typo never makes one.
                self.add('flavor', flavor.name, flavor.id,
                         "is mapped to '%s', which does not exist at the "
                         'destination' % name)
            elif not self.admin:
                self.add('flavor', name, flavor.id,
                         'does not exist at the destination and creating it '
                         'needs admin; map it with --flavor-map %s=<flavor>'
                         % flavor.name)

    def keypairs(self):
        for keypair in self.plan.keypairs:
            if not keypair.public_key:
                self.add('keypair', keypair.name, keypair.name,
                         'its public key is not readable by this user (a '
                         'keypair belongs to the user who made it)')
                continue
            try:
                found = self.dest.compute.get_keypair(keypair.name)
            except sdk_exc.NotFoundException:
                continue
            if not attributes.same_key(found.public_key, keypair.public_key):
                self.add('keypair', keypair.name, keypair.name,
                         'exists at the destination with another public key')

    # -- networks -----------------------------------------------------------

    def networks(self):
        net = self.dest.network
        for network in self.plan.networks:
            if network.external:
                continue
            try:
                target = self.replicator.network_mapping(network)
            except replicate.ReplicationError as exc:
                self.add('network', network.name, network.id, str(exc))
                continue
            if target is None:
                continue
            dest_net = net.find_network(target, ignore_missing=True)
            if dest_net is None:
                self.add('network', network.name, network.id,
                         "is mapped to '%s', which does not exist at the "
                         'destination' % target)
                continue
            self._fixed_ips_free(network, dest_net)

    def _fixed_ips_free(self, network, dest_net):
        """On a mapped network the kept fixed IPs must be free and in range."""
        net = self.dest.network
        dest_subnets = list(net.subnets(network_id=dest_net.id))
        taken = {}
        for port in net.ports(network_id=dest_net.id):
            for fixed in port.fixed_ips or []:
                taken[fixed['ip_address']] = port
        for port in self.plan.ports:
            if port.network_id != network.id:
                continue
            if self.replicator.find('port', port.id):
                continue
            for fixed in port.fixed_ips:
                address = ipaddress.ip_address(fixed.ip_address)
                if not any(address in ipaddress.ip_network(s.cidr)
                           for s in dest_subnets):
                    self.add('port', port.name or fixed.ip_address, port.id,
                             'fixed IP %s is in no subnet of the destination '
                             "network '%s'" % (fixed.ip_address,
                                               dest_net.name))
                elif fixed.ip_address in taken:
                    holder = taken[fixed.ip_address]
                    self.add('port', port.name or fixed.ip_address, port.id,
                             'fixed IP %s is already used at the destination '
                             'by port %s (%s)' % (fixed.ip_address, holder.id,
                                                  holder.device_owner
                                                  or 'unbound'))

    def external_network(self):
        needs = any(r.external_network_id for r in self.plan.routers) or (
            self.plan.floating_ips)
        if not needs:
            return
        try:
            target = self.replicator.external_network()
        except replicate.ReplicationError as exc:
            self.add('network', 'external', '', str(exc))
            return
        found = self.dest.network.find_network(target, ignore_missing=True)
        if found is None or not found.is_router_external:
            self.add('network', target, '',
                     'is not an external network at the destination')

    def name_collisions(self):
        net = self.dest.network
        project = self.replicator.dest_project
        checks = (
            ('network', [n for n in self.plan.networks
                         if self.replicator.network_mapping(n) is None]
             if not self._mapping_broken() else [], net.networks),
            ('router', self.plan.routers, net.routers),
            ('security_group', [g for g in self.plan.security_groups
                                if g.name != 'default'],
             net.security_groups),
        )
        for kind, items, lister in checks:
            for item in items:
                if not item.name or self.replicator.find(kind, item.id) \
                        or self.replicator.adoptable(kind, item.id,
                                                     name=item.name):
                    continue    # ours, or made by an interrupted run
                for other in lister(name=item.name, project_id=project):
                    self.add(kind, item.name, item.id,
                             'a %s with this name already exists at the '
                             'destination (%s) and was not made by '
                             'overcloud-migrate' % (kind.replace('_', ' '),
                                                    other.id))
                    break

    def _mapping_broken(self):
        try:
            for network in self.plan.networks:
                self.replicator.network_mapping(network)
        except replicate.ReplicationError:
            return True
        return False

    def cidr_overlaps(self):
        if self._mapping_broken():
            return
        net = self.dest.network
        project = self.replicator.dest_project
        # A migration's own subnets do not count: tagged, or on a network
        # it made (another migration running now may have created a subnet
        # and not yet tagged it; its network was tagged before).
        ours = {n.id for n in net.networks(project_id=project)
                if replicate.MARK_TAG in (n.tags or [])}
        existing = [s for s in net.subnets(project_id=project)
                    if replicate.MARK_TAG not in (s.tags or [])
                    and s.network_id not in ours]
        for subnet in self.plan.subnets:
            network = self.plan.by_id('networks', subnet.network_id)
            if self.replicator.network_mapping(network) is not None:
                continue
            if self.replicator.find('subnet', subnet.id):
                continue
            mine = ipaddress.ip_network(subnet.cidr)
            for other in existing:
                theirs = ipaddress.ip_network(other.cidr)
                if mine.version == theirs.version and mine.overlaps(theirs):
                    self.add('subnet', subnet.name, subnet.id,
                             'CIDR %s overlaps %s of destination subnet %s '
                             '(%s)' % (subnet.cidr, other.cidr,
                                       other.name or '-', other.id))

    # -- quotas -------------------------------------------------------------

    def compute_quota(self):
        limits = self.dest.compute.get_limits().absolute
        flavors = {f.id: f for f in self.plan.flavors}
        need = {
            'instances': (len(self.plan.servers), 'instances',
                          'total_instances_used'),
            'cores': (sum(flavors[s.flavor_id].vcpus
                          for s in self.plan.servers), 'total_cores',
                      'total_cores_used'),
            'RAM (MiB)': (sum(flavors[s.flavor_id].ram
                              for s in self.plan.servers), 'total_ram',
                          'total_ram_used'),
        }
        for label, (wanted, limit_key, used_key) in need.items():
            limit = getattr(limits, limit_key, None)
            used = getattr(limits, used_key, None) or 0
            if wanted and limit is not None and limit >= 0 and \
                    used + wanted > limit:
                self.add('quota', label, '',
                         'needs %d more, but only %d of %d are free at the '
                         'destination' % (wanted, max(limit - used, 0), limit))

    def network_quota(self):
        net = self.dest.network
        quota = net.get_quota(self.replicator.dest_project, details=True)
        create = {'network': 0, 'subnet': 0, 'router': 0, 'port': 0,
                  'security_group': 0, 'floatingip': 0}
        for network in self.plan.networks:
            if (self.replicator.network_mapping(network) is None
                    if not self._mapping_broken() else True) and \
                    not self.replicator.find('network', network.id):
                create['network'] += 1
        for subnet in self.plan.subnets:
            if not self.replicator.find('subnet', subnet.id):
                create['subnet'] += 1
        for router in self.plan.routers:
            if not self.replicator.find('router', router.id):
                create['router'] += 1
                create['port'] += len(router.interfaces)
        for port in self.plan.ports:
            if not self.replicator.find('port', port.id):
                create['port'] += 1
        for group in self.plan.security_groups:
            if group.name != 'default' and \
                    not self.replicator.find('security_group', group.id):
                create['security_group'] += 1
        for fip in self.plan.floating_ips:
            if not self.replicator.find('floating_ip', fip.id):
                create['floatingip'] += 1
        attrs = {'network': 'networks', 'subnet': 'subnets',
                 'router': 'routers', 'port': 'ports',
                 'security_group': 'security_groups',
                 'floatingip': 'floating_ips'}
        for key, wanted in create.items():
            detail = getattr(quota, attrs[key], None)
            if not wanted or not isinstance(detail, dict):
                continue
            limit = detail.get('limit', -1)
            used = detail.get('used', 0) + detail.get('reserved', 0)
            if limit >= 0 and used + wanted > limit:
                self.add('quota', key.replace('_', ' ') + 's', '',
                         'needs %d more, but only %d of %d are free at the '
                         'destination' % (wanted, max(limit - used, 0), limit))

    # -- volumes --------------------------------------------------------------

    def _volumes_to_move(self):
        """The plan's volumes whose server is not already migrated."""
        return [v for s in self.plan.servers if s.id not in self.migrated
                for v in self.plan.volumes_of(s)]

    def volumes(self):
        """The destination has Cinder, Nova can use it, and every volume
        type exists there (after --volume-type-map)."""
        wanted = self._volumes_to_move()
        if not wanted:
            return
        try:
            endpoint = self.dest.block_storage.get_endpoint()
        except sdk_exc.SDKException:
            endpoint = None
        if not endpoint:
            self.add('cloud', '', '', 'the destination has no block-storage '
                     '(Cinder) service in its catalog, so the volumes of %s '
                     'cannot be created there' % ', '.join(sorted(
                         {s.name for s in self.plan.servers if s.volumes})))
            return
        if any(s.boot_source == 'volume' for s in self.plan.servers
               if s.id not in self.migrated):
            version = _max_microversion(self.dest)
            if version is not None and version < BFV_MICROVERSION:
                self.add('cloud', '', '', 'the destination Compute API goes '
                         'up to microversion %d.%d; booting from a volume '
                         'with block_device_mapping_v2 needs %d.%d'
                         % (version + BFV_MICROVERSION))
        types = {t.name for t in self.dest.block_storage.types()}
        mapping = self.plan.mappings.volume_types
        seen = set()
        for volume in wanted:
            source_type = volume.volume_type
            if not source_type or source_type in seen:
                continue
            seen.add(source_type)
            target = mapping.get(source_type, source_type)
            if target in types:
                continue
            users = ', '.join("'%s'" % (v.name or v.id) for v in wanted
                              if v.volume_type == source_type)
            if source_type in mapping:
                text = ("volume type '%s' is mapped to '%s', which does not "
                        'exist at the destination (volumes %s)' % (
                            source_type, target, users))
            else:
                text = ("volume type '%s' has no destination mapping and no "
                        'type of that name exists at the destination '
                        '(volumes %s); map it with --volume-type-map '
                        '%s=<type> (destination types: %s)' % (
                            source_type, users, source_type,
                            ', '.join(sorted(types)) or 'none'))
            self.add('volume_type', source_type, '', text)

    def volume_quota(self):
        """Destination volumes and gigabytes, in total and per type."""
        wanted = self._volumes_to_move()
        if not wanted:
            return
        need = {'volumes': len(wanted),
                'gigabytes': sum(v.size for v in wanted)}
        for volume in wanted:
            volume_type = replicate_volume_type(self.plan, volume)
            if volume_type:
                need['volumes_%s' % volume_type] = need.get(
                    'volumes_%s' % volume_type, 0) + 1
                need['gigabytes_%s' % volume_type] = need.get(
                    'gigabytes_%s' % volume_type, 0) + volume.size
        self._cinder_quota(self.dest, need, 'the destination')

    def source_volume_quota(self):
        """The temporary snapshot and volume of each in-use volume are
        made at the source: its snapshots, volumes and gigabytes."""
        if self.source is None or not self.copies_at_source:
            return
        wanted = self._volumes_to_move()
        if not wanted:
            return
        # A snapshot and a volume of the same size per volume (snapshots
        # count against gigabytes too, by Cinder's default).
        need = {'snapshots': len(wanted), 'volumes': len(wanted),
                'gigabytes': 2 * sum(v.size for v in wanted)}
        self._cinder_quota(self.source, need, 'the source (temporary '
                           'snapshots and volumes of the copy)')

    def _cinder_quota(self, conn, need, where):
        reply = conn.block_storage.get(
            '/os-quota-sets/%s?usage=True' % conn.current_project_id)
        if reply.status_code != 200:
            self.add('quota', 'volumes', '', '%s did not show its Cinder '
                     'quotas (HTTP %d); cannot check room for the volumes'
                     % (where, reply.status_code))
            return
        quota = reply.json().get('quota_set', {})
        for key, wanted in need.items():
            detail = quota.get(key)
            if not isinstance(detail, dict) or not wanted:
                continue
            limit = detail.get('limit', -1)
            used = (detail.get('in_use', 0) or 0) + (
                detail.get('reserved', 0) or 0)
            if limit is None or limit < 0 or used + wanted <= limit:
                continue
            free = max(limit - used, 0)
            unit = ' GiB' if key.startswith('gigabytes') else ''
            self.add('quota', key, '', 'needs %d%s more at %s, but only %d%s '
                     'of %d%s are free: %d%s missing' % (
                         wanted, unit, where, free, unit, limit, unit,
                         wanted - free, unit))


def replicate_volume_type(plan, volume):
    """The destination type of ``volume`` (None: the default type)."""
    if not volume.volume_type:
        return None
    return plan.mappings.volume_types.get(volume.volume_type,
                                          volume.volume_type)
