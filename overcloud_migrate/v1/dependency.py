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
from overcloud_migrate.cli import progress
from overcloud_migrate.plan.cloud_inputs import placement_hosts  # noqa: F401
from overcloud_migrate.plan.cloud_inputs import source_inventory  # noqa: F401
from overcloud_migrate.planner import capacity
from overcloud_migrate.planner import graph
from overcloud_migrate.planner import inputs
from overcloud_migrate.planner import model

LOG = logging.getLogger(__name__)

COLUMNS = ('Wave', 'Servers', 'vCPU', 'RAM MB', 'Disk GB', 'Target Host',
           'Traffic Inside', 'Traffic Cut', 'Basis')
LONG_COLUMNS = COLUMNS + ('Server IDs',)


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
        progress.say(f'WARNING: {message}')

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
