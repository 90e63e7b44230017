"""``openstack overcloud migrate``: move servers to another cloud."""

import logging

from osc_lib.command import command
from osc_lib import exceptions

from overcloud_migrate import clouds
from overcloud_migrate import exceptions as om_exceptions
from overcloud_migrate import journal as journal_mod
from overcloud_migrate.cli import options
from overcloud_migrate.cli import progress
from overcloud_migrate.cli import report
from overcloud_migrate.cli import transport_options
from overcloud_migrate.plan import inventory
from overcloud_migrate.plan import model
from overcloud_migrate.plan import ordering
from overcloud_migrate.v1 import columns
from overcloud_migrate.v1 import constants
from overcloud_migrate.workflow import runner

LOG = logging.getLogger(__name__)


def _map_option(group, flag, help_text):
    """A repeatable ``<source>=<destination>`` mapping option."""
    group.add_argument(flag, metavar='<source>=<destination>',
                       type=options.key_value, action='append', default=[],
                       help=help_text)


class MigrateServer(report.ReportThenFail, command.Lister):
    """Migrate servers, with their networks and addresses, to another cloud.

    The source is the cloud of the usual --os-* options; the destination is
    another clouds.yaml entry (--dest-cloud). The servers and the network
    world they need (networks, subnets, routers with their external gateway,
    interfaces and routes, security groups with every rule, keypairs,
    flavors, ports with their fixed IPs and MAC addresses, floating IPs) are
    read into a plan, checked against the destination (all problems at once,
    nothing changed when any is found) and rebuilt there. A second run
    creates nothing: every resource made at the destination carries its
    source ID and is found again.

    With --handoff DIR nothing is done at the destination here: each server
    is stopped and snapshotted, then its image, its plan (the server and its
    network world) and last a completion marker are written atomically into
    DIR/<migration>-<server>/ with the chosen transport (sharedfs: DIR is a
    local or mounted directory; ssh: DIR is on --ssh-host), for `openstack
    overcloud receiver run` at the destination to pick up. No destination
    cloud is needed.

    With --order dependency the servers move in waves of servers that talk
    to each other; --pin-hosts also boots each one on the destination host
    the planner placed its group on (admin).

    With --warm the servers keep running while their Cinder volumes are
    copied: after the network world, a first sync round brings an empty
    copy of each volume at the destination in step with the source (only
    non-zero blocks cross), and the migration stays "synced". Later rounds
    (`openstack overcloud migration sync`, or --sync-rounds) move only the
    blocks changed since; the cut-over (`openstack overcloud migration
    cutover`, or --cutover) stops each server, moves the last changes and
    boots it from its volumes, so the downtime follows the change, not the
    disk size. Needs a transport that moves deltas (dtn, with
    --dtn-source-volumes and --dtn-dest-volumes).

    With --dry-run nothing is changed and the rows say what would be done.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            'servers', metavar='<server>', nargs='*',
            help='Server to migrate (name or ID; repeat for more)')
        parser.add_argument(
            '--all-servers', action='store_true',
            help='Migrate every server of the source project')
        options.add_dest_cloud_options(parser)
        plan = parser.add_argument_group('plan')
        plan.add_argument(
            '--plan-file', metavar='<file>',
            help='Write the plan to this file (YAML, or JSON if the name ends '
                 'in .json) for review or editing')
        plan.add_argument(
            '--from-plan', metavar='<file>',
            help='Apply a plan written earlier with --plan-file (instead of '
                 'naming servers)')
        _map_option(
            plan, '--network-map',
            'Attach the servers of source network <source> (name or ID) '
            'to the existing destination network <destination> instead '
            'of recreating it (repeat for more)')
        plan.add_argument(
            '--external-network', metavar='<network>',
            help='Destination external network for router gateways and '
                 'floating IPs (default: the only external network)')
        _map_option(
            plan, '--flavor-map',
            'Use destination flavor <destination> for source flavor '
            '<source> (repeat for more; default: same name)')
        _map_option(
            plan, '--volume-type-map',
            'Create the copies of volumes of source volume type '
            '<source> with destination volume type <destination> '
            '(repeat for more; default: same name)')
        _map_option(
            plan, '--az-map',
            'Map a source availability zone to a destination one '
            '(repeat for more; default: same name)')
        parser.add_argument(
            '--floating-ip-mode', choices=('keep', 'new', 'none'),
            default='keep',
            help='keep: the same address when the destination has it free '
                 '(needs admin), else a new one; new: a new address; none: '
                 'no floating IPs (default: keep)')
        move = transport_options.add_transport_options(parser)
        move.add_argument(
            '--handoff', metavar='<directory>',
            help='Do not move the servers: leave each one (image, plan and a '
                 'completion marker) as an item in this directory for the '
                 'Receiver (`openstack overcloud receiver run`); needs a '
                 'transport that reaches the directory (%s); no '
                 '--dest-cloud' % ', '.join(handoff_names()))
        stop = move.add_mutually_exclusive_group()
        stop.add_argument(
            '--stop', dest='stop', action='store_true', default=True,
            help='Stop each source server before its snapshot (default)')
        stop.add_argument(
            '--no-stop', dest='stop', action='store_false',
            help='Do not stop the source servers: the snapshots are only '
                 'crash consistent')
        move.add_argument(
            '--delete-source', action='store_true',
            help='Delete each source server once its copy is ACTIVE and '
                 'verified (default: keep it, stopped)')
        move.add_argument(
            '--keep-source-snapshots', action='store_true',
            help='Keep the snapshot images this migration makes in the '
                 'source Glance (default: delete each once its server is '
                 'verified at the destination)')
        move.add_argument(
            '--keep-source-stopped', action='store_true',
            help='Leave a source server stopped when its migration fails '
                 '(default: restart it)')
        move.add_argument(
            '--parallel', metavar='<count>', type=options.positive_int, default=1,
            help='Migrate this many servers at once (default: 1)')
        move.add_argument(
            '--timeout', metavar='<seconds>', type=options.positive_int, default=600,
            help='Wait at most this long for each stop, snapshot, upload and '
                 'boot (default: 600)')
        move.add_argument(
            '--network-only', action='store_true',
            help='Only rebuild the network world and pre-create the ports; '
                 'move no server')
        warm = parser.add_argument_group('warm migration')
        warm.add_argument(
            '--warm', action='store_true',
            help='Copy the volumes while the servers run (sync rounds), '
                 'cut over later; every server needs a Cinder volume and '
                 'the transport must move deltas (default: cold: stop, '
                 'copy, boot)')
        warm.add_argument(
            '--sync-rounds', metavar='<count>', type=options.positive_int,
            default=1,
            help='With --warm: this many sync rounds before the command '
                 'returns (or cuts over), --sync-interval apart (default: 1)')
        warm.add_argument(
            '--sync-interval', metavar='<seconds>',
            type=options.positive_int, default=None,
            help='With --warm: seconds between two sync rounds '
                 '(default: 0, one right after the other)')
        warm.add_argument(
            '--dest-boot-volume', action='store_true',
            help='With --warm: a server that boots from an image gets a '
                 'volume at the destination for its root disk, synced in '
                 'rounds from its disk file in the source instance store '
                 '(--dtn-source-disks: no snapshot) or from a Nova snapshot '
                 'of the running server per round (--dtn-source-images), '
                 'and boots from it (default: its root disk moves cold at '
                 'the cut-over)')
        warm.add_argument(
            '--cutover', action='store_true',
            help='With --warm: cut over right after the last sync round '
                 '(default: stop at "synced"; `openstack overcloud migration '
                 'cutover` does it later)')
        order = parser.add_argument_group('order')
        order.add_argument(
            '--order', choices=('given', 'dependency'), default='given',
            help='given: the servers in the order named; dependency: waves '
                 'of servers that talk to each other, from --flows, --pcap '
                 'or (without either) an estimate from the topology '
                 '(default: given)')
        traffic = order.add_mutually_exclusive_group()
        traffic.add_argument(
            '--flows', metavar='<file>',
            help='With --order dependency: traffic between the servers '
                 '(CSV or JSON rows: source, destination, bytes or rate; '
                 'default: none, the groups are then estimated from '
                 'security-group rules and shared networks)')
        traffic.add_argument(
            '--pcap', metavar='<file>',
            help='With --order dependency: a packet capture (pcap/pcapng), '
                 'bytes summed per server pair (default: none)')
        order.add_argument(
            '--algorithm', choices=('default', 'seed'), default='default',
            help='With --order dependency: the grouping method '
                 '(default: default)')
        order.add_argument(
            '--host-capacity', metavar='<file>',
            help='With --order dependency: destination host capacities '
                 '(YAML/JSON) instead of the destination\'s Placement '
                 '(default: none, ask Placement; needs admin)')
        pin = order.add_mutually_exclusive_group()
        pin.add_argument(
            '--pin-hosts', dest='pin_hosts', action='store_true',
            default=None,
            help='Boot each server on the destination compute host the '
                 'dependency planner placed its group on, so servers that '
                 'talk to each other share a host where capacity allows. '
                 'The hosts are written into the plan (dest_host of each '
                 'server), checked before anything is created (the host '
                 'must exist, be up and enabled and have room) and sent '
                 'to Nova with microversion 2.74, which needs the admin '
                 'role at the destination. Needs --order dependency, or '
                 '--from-plan with a plan that holds an order (default: '
                 'keep the hosts a --from-plan plan names; else let the '
                 'destination scheduler choose)')
        pin.add_argument(
            '--no-pin-hosts', dest='pin_hosts', action='store_false',
            help='Clear every dest_host of a --from-plan plan and let the '
                 'destination scheduler choose the hosts')
        parser.add_argument(
            '--dry-run', action='store_true',
            help='Check and print what would be done; change nothing')
        options.add_journal_option(parser)
        return parser

    def _validate(self, args):
        if args.from_plan and (args.servers or args.all_servers):
            raise exceptions.CommandError(
                'Give either --from-plan or servers (or --all-servers), not '
                'both.')
        if args.servers and args.all_servers:
            raise exceptions.CommandError(
                'Give either server names or --all-servers, not both.')
        if not (args.from_plan or args.servers or args.all_servers):
            raise exceptions.CommandError(
                'Name at least one server, or give --all-servers or '
                '--from-plan.')
        if args.handoff and (args.dest_cloud or args.dest_region
                             or args.dest_project):
            raise exceptions.CommandError(
                '--handoff does nothing at the destination: the receiver '
                'there names its cloud (`openstack overcloud receiver run '
                '--dest-cloud`); drop --dest-cloud, --dest-region and '
                '--dest-project.')
        if args.handoff and (args.network_only or args.delete_source):
            raise exceptions.CommandError(
                '--handoff moves no server here: it does not go with '
                '--network-only or --delete-source.')
        if args.handoff and args.order == 'dependency' and \
                not args.host_capacity:
            raise exceptions.CommandError(
                '--handoff has no destination to read host capacities from: '
                'give --host-capacity with --order dependency.')
        if (args.flows or args.pcap or args.host_capacity) and \
                args.order != 'dependency':
            raise exceptions.CommandError(
                '--flows, --pcap and --host-capacity go with --order '
                'dependency.')
        if args.pin_hosts and args.order != 'dependency' and \
                not args.from_plan:
            raise exceptions.CommandError(
                '--pin-hosts goes with --order dependency (or with '
                '--from-plan and a plan that holds an order).')
        if args.pin_hosts and args.handoff:
            raise exceptions.CommandError(
                '--pin-hosts needs the destination cloud, which --handoff '
                'does not reach: the Receiver boots the servers.')
        if not args.warm and (args.cutover or args.sync_interval is not None
                              or args.sync_rounds != 1
                              or args.dest_boot_volume):
            raise exceptions.CommandError(
                '--sync-rounds, --sync-interval, --dest-boot-volume and '
                '--cutover go with --warm.')
        if args.warm and (args.handoff or args.network_only
                          or not args.stop):
            raise exceptions.CommandError(
                '--warm does not go with --handoff, --network-only or '
                '--no-stop: its cut-over stops each server and boots it at '
                'the destination.')
        transport_options.validate(args)

    def take_action(self, parsed_args):
        args = parsed_args
        self._validate(args)
        try:
            traffic = None
            if args.order == 'dependency':
                traffic = ordering.read_traffic(args.flows, args.pcap)
            plan = model.Plan.load(args.from_plan) if args.from_plan else None
            source = self.app.client_manager.sdk_connection
            source_id = clouds.identity_of(source, self.app.options.cloud)
            if args.handoff:
                dest_name, dest = None, None
                dest_id = clouds.handoff_identity(args.transport,
                                                  args.handoff)
            else:
                dest_name = clouds.dest_cloud_name(args.dest_cloud)
                dest = clouds.open_destination(
                    self.app.cloud_config, dest_name, args.dest_region,
                    args.dest_project)
                dest_id = clouds.identity_of(dest, dest_name)
                clouds.refuse_same_cloud(source_id, dest_id)
                if args.pin_hosts and not runner.is_admin(dest):
                    raise exceptions.CommandError(
                        '--pin-hosts needs the admin role at the destination '
                        '(%s): booting a server on a chosen compute host is '
                        'an admin-only Nova request.' % dest_name)
            mappings = _mappings(args, plan)
            if plan is None:
                servers = inventory.find_servers(source, args.servers,
                                                 args.all_servers)
                if not servers:
                    raise exceptions.CommandError(
                        'The source project has no servers to migrate.')
                plan = inventory.build_plan(source, source_id, servers,
                                            mappings)
            else:
                plan.mappings = mappings
            if traffic is not None:
                result = ordering.order_by_dependency(
                    plan, source, dest, traffic,
                    host_capacity=args.host_capacity,
                    algorithm=args.algorithm, warn=progress.say,
                    pin_hosts=bool(args.pin_hosts))
                progress.say('Dependency order (%s, %s): %s' % (
                    result.algorithm, result.basis, ' | '.join(
                        ', '.join(_name(plan, sid) for sid in wave)
                        for wave in plan.waves())))
            elif args.pin_hosts:
                if not plan.order_waves():
                    raise exceptions.CommandError(
                        'The plan %s holds no order to take hosts from; '
                        'give --order dependency to plan them.'
                        % args.from_plan)
                plan.pin_hosts(ordering.hosts_from_order(plan.order))
            if args.pin_hosts is False:
                plan.pin_hosts({s.id: None for s in plan.servers})
            if plan.dest_hosts():
                progress.say('Destination hosts: %s'
                             % ordering.describe_hosts(plan))
            if args.plan_file:
                plan.dump(args.plan_file)
                progress.say('Plan written to %s' % args.plan_file)
            run = runner.Run(
                plan, source, dest, source_id, dest_id,
                journal_mod.Journal(args.journal_url),
                run_options(args), progress=progress.say,
                progress_bar=progress.bar_factory(),
                dest_names={'dest_cloud': dest_name,
                            'dest_region': args.dest_region,
                            'dest_project': args.dest_project})
            outcome = run.execute()
        except om_exceptions.OvercloudMigrateError as exc:
            raise exceptions.CommandError(str(exc))
        self.outcome = outcome
        if outcome.migration_id:
            progress.say('Migration %s recorded in the journal'
                         % outcome.migration_id)
        return (constants.MIGRATE_COLUMNS,
                columns.migrate_rows(outcome.records))


def run_options(args):
    handoff_dir = getattr(args, 'handoff', None)
    return runner.Options(
        dry_run=args.dry_run, floating_ip_mode=args.floating_ip_mode,
        transport=args.transport,
        transport_options=transport_options.driver_options(
            args, timeout=args.timeout, handoff=handoff_dir),
        stop=args.stop, restart_on_failure=not args.keep_source_stopped,
        delete_source=args.delete_source, parallel=args.parallel,
        keep_source_snapshots=args.keep_source_snapshots,
        timeout=args.timeout, servers=not args.network_only,
        handoff=handoff_dir, warm=getattr(args, 'warm', False),
        sync_rounds=getattr(args, 'sync_rounds', 1),
        sync_interval=getattr(args, 'sync_interval', None) or 0,
        cutover=getattr(args, 'cutover', False),
        dest_boot_volume=getattr(args, 'dest_boot_volume', False))


def handoff_names():
    try:
        return runner.handoff_transports()
    except Exception:  # a broken install must not break --help
        return ['sharedfs', 'ssh']


def _name(plan, server_id):
    server = plan.by_id('servers', server_id)
    return server.name if server else server_id


def _mappings(args, plan):
    """Plan mappings, with the command line taking precedence."""
    current = plan.mappings if plan is not None else model.Mappings()
    return model.Mappings(
        networks={**current.networks, **dict(args.network_map)},
        external_network=args.external_network or current.external_network,
        flavors={**current.flavors, **dict(args.flavor_map)},
        availability_zones={**current.availability_zones,
                            **dict(args.az_map)},
        volume_types={**current.volume_types,
                      **dict(getattr(args, 'volume_type_map', None) or [])})
