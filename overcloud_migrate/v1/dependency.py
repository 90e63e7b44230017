"""``openstack overcloud dependency show``: groups, order and placement.

The command reads traffic from a flow file or a capture, gathers the
servers and their port addresses from the source cloud and the free
capacity of the destination hosts (Placement, or ``--host-capacity``), and
calls :func:`overcloud_migrate.planner.plan_dependencies`. All planning is
in :mod:`overcloud_migrate.planner`; this module only gathers and formats.
"""

import logging

from osc_lib.cli import format_columns
from osc_lib.command import command
from openstack import exceptions as sdk_exceptions
from osc_lib import exceptions

from overcloud_migrate import clouds
from overcloud_migrate import planner
from overcloud_migrate.planner import capacity
from overcloud_migrate.planner import graph
from overcloud_migrate.planner import inputs
from overcloud_migrate.planner import model

LOG = logging.getLogger(__name__)

COLUMNS = ('Wave', 'Servers', 'vCPU', 'RAM MB', 'Disk GB', 'Target Host',
           'Traffic Inside', 'Traffic Cut', 'Basis')
LONG_COLUMNS = COLUMNS + ('Server IDs',)


# --- gathering from the clouds (the only code here that makes API calls) ---

def _flavor_sizes(conn, server, cache):
    flavor = server.flavor
    vcpus = getattr(flavor, 'vcpus', None)
    if vcpus is None:
        flavor_id = getattr(flavor, 'id', None) or server.flavor_id
        if flavor_id not in cache:
            cache[flavor_id] = conn.compute.get_flavor(flavor_id)
        flavor = cache[flavor_id]
    disk = (getattr(flavor, 'disk', 0) or 0) + (
        getattr(flavor, 'ephemeral', 0) or 0)
    return int(flavor.vcpus or 0), int(flavor.ram or 0), int(disk)


def source_inventory(conn, wanted=(), topology_needed=False):
    """Servers of the source project with their fixed IPs and sizes.

    :param wanted: server names or IDs; empty means every server of the
        project. Others' addresses go to ``outside`` so their flows are
        not reported as unknown.
    """
    every = list(conn.compute.servers(details=True))
    if wanted:
        chosen = []
        for ref in wanted:
            found = conn.compute.find_server(ref, ignore_missing=True)
            if found is None:
                raise exceptions.CommandError(
                    f'No server with name or ID {ref!r} in the source '
                    f'cloud.')
            if found.id not in chosen:
                chosen.append(found.id)
    else:
        chosen = [s.id for s in every]
    chosen_set = set(chosen)
    ports = {}
    project_id = conn.current_project_id
    for port in conn.network.ports(project_id=project_id):
        ports.setdefault(port.device_id, []).append(port)
    inventory = inputs.Inventory(servers=[])
    flavors = {}
    by_id = {s.id: s for s in every}
    for sid in chosen:
        server = by_id.get(sid) or conn.compute.get_server(sid)
        own = ports.get(sid)
        if own is None:
            own = list(conn.network.ports(device_id=sid))
        ips = tuple(ip['ip_address'] for p in own
                    for ip in (p.fixed_ips or []))
        vcpus, ram, disk = _flavor_sizes(conn, server, flavors)
        inventory.servers.append(model.ServerInfo(
            sid, server.name, ips, vcpus, ram, disk))
        inventory.networks[sid] = sorted({p.network_id for p in own})
        inventory.security_groups[sid] = sorted(
            {g for p in own for g in (p.security_group_ids or [])})
    for server in every:
        if server.id not in chosen_set:
            inventory.outside.update({server.id, server.name})
            for port in ports.get(server.id, []):
                inventory.outside.update(
                    ip['ip_address'] for ip in (port.fixed_ips or []))
    if topology_needed:
        external = set()
        for net_id in {n for nets in inventory.networks.values()
                       for n in nets}:
            net = conn.network.get_network(net_id)
            if net.is_router_external or net.is_shared:
                external.add(net_id)
        inventory.networks = {
            sid: [n for n in nets if n not in external]
            for sid, nets in inventory.networks.items()}
        for rule in conn.network.security_group_rules(
                project_id=project_id, direction='ingress'):
            if rule.remote_group_id:
                inventory.remote_groups.setdefault(
                    rule.security_group_id, []).append(rule.remote_group_id)
    return inventory


def placement_hosts(conn):
    """Free capacity of the destination's compute nodes (admin)."""
    providers = []
    for rp in conn.placement.resource_providers():
        inventories = {
            inv.resource_class: {'total': inv.total or 0,
                                 'reserved': inv.reserved or 0,
                                 'allocation_ratio':
                                     inv.allocation_ratio or 1.0}
            for inv in conn.placement.resource_provider_inventories(rp)}
        if 'VCPU' not in inventories:
            continue
        usages = conn.placement.fetch_resource_provider_usages(rp).usages
        providers.append({'name': rp.name, 'inventories': inventories,
                          'usages': usages or {}})
    return capacity.hosts_from_placement(providers)


def plan_rows(plan, names, long=False):
    """Lister rows: one per group, in wave order."""
    rows = []
    for wave in plan.waves:
        for group in wave.groups:
            row = (wave.index,
                   format_columns.ListColumn(
                       [names.get(s, s) for s in group.server_ids]),
                   group.vcpus, group.ram_mb, group.disk_gb, group.host,
                   group.traffic_inside, group.traffic_cut, plan.basis)
            if long:
                row += (format_columns.ListColumn(group.server_ids),)
            rows.append(row)
    return (LONG_COLUMNS if long else COLUMNS), rows


class ShowDependency(command.Lister):
    """Show servers grouped by their traffic, in migration order.

    Each row is a group of servers that moves to one destination host;
    groups of the same wave move together, waves one after the other.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            'servers', metavar='<server>', nargs='*',
            help='Servers to plan, by name or ID (default: every server '
                 'of the source project)')
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            '--flows', metavar='<file>',
            help='Flow file: CSV, JSON or JSON Lines rows of source, '
                 'destination and bytes or rate, by IP, server name or ID '
                 '(default: none)')
        source.add_argument(
            '--pcap', metavar='<file>',
            help='Packet capture (pcap or pcapng); bytes are summed per '
                 'server pair (default: none). Without --flows or --pcap '
                 'the groups are estimated from security-group rules and '
                 'shared networks')
        parser.add_argument(
            '--algorithm', metavar='<name>', choices=planner.ALGORITHMS,
            default='default',
            help='Planner: "default" (communities and packing) or "seed" '
                 "(the prototype's PCA and radius grouping, corrected) "
                 '(default: default)')
        parser.add_argument(
            '--host-capacity', metavar='<file>',
            help='YAML or JSON file of destination hosts with free vcpus, '
                 'ram_mb and disk_gb, instead of asking the destination '
                 "cloud's Placement service (default: none)")
        parser.add_argument(
            '--dest-cloud', metavar='<cloud>',
            default=clouds.dest_cloud_name(None),
            help='Destination cloud in clouds.yaml, whose Placement service '
                 'gives the host capacities (Env: %s, default: none)'
                 % clouds.DEST_CLOUD_ENV)
        parser.add_argument(
            '--dest-region', metavar='<region>',
            help='Region of the destination cloud (default: its clouds.yaml '
                 'region)')
        parser.add_argument(
            '--graph', metavar='<file>',
            help='Also draw the servers, their traffic and groups to a '
                 '.dot, .svg or .png file (svg/png need matplotlib) '
                 '(default: none)')
        parser.add_argument(
            '--strict', action='store_true', default=False,
            help='Refuse flows whose addresses match no server port instead '
                 'of ignoring them with a warning (default: off)')
        parser.add_argument(
            '--long', action='store_true', default=False,
            help='Also list server IDs (default: off)')
        return parser

    def _warn(self, message):
        self.app.stderr.write(f'WARNING: {message}\n')

    def take_action(self, parsed_args):
        # Validate every local input before any API call.
        try:
            flows, basis = inputs.read_traffic(parsed_args.flows, parsed_args.pcap)
            hosts = None
            if parsed_args.host_capacity:
                hosts = capacity.load_host_capacity(
                    parsed_args.host_capacity)
            elif not parsed_args.dest_cloud:
                raise model.PlannerError(
                    'The destination hosts are unknown: give '
                    '--host-capacity <file> or --dest-cloud <cloud> (or '
                    f'set {clouds.DEST_CLOUD_ENV}).')
            if parsed_args.graph:
                graph.check_can_draw(parsed_args.graph)
        except model.PlannerError as exc:
            raise exceptions.CommandError(str(exc)) from None

        inventory = source_inventory(
            self.app.client_manager.sdk_connection, parsed_args.servers,
            topology_needed=flows is None)
        try:
            if hosts is None:
                hosts = placement_hosts(self._dest_connection(parsed_args))
            plan, traffic = inputs.plan_for_inventory(
                inventory, hosts, flows, basis,
                algorithm=parsed_args.algorithm, strict=parsed_args.strict,
                warn=self._warn)
            names = {s.id: s.name for s in inventory.servers}
            if parsed_args.graph:
                graph.draw(parsed_args.graph, plan, names, traffic)
        except model.PlannerError as exc:
            raise exceptions.CommandError(str(exc)) from None
        except sdk_exceptions.ForbiddenException:
            raise exceptions.CommandError(
                "Reading the destination's Placement inventories needs the "
                'admin role there; give --host-capacity <file> instead.'
            ) from None
        for note in plan.notes:
            self._warn(note)
        return plan_rows(plan, names, long=parsed_args.long)

    def _dest_connection(self, parsed_args):
        try:
            return clouds.open_destination(
                self.app.cloud_config, parsed_args.dest_cloud,
                region=parsed_args.dest_region)
        except clouds.CloudError as exc:
            raise exceptions.CommandError(str(exc)) from None
