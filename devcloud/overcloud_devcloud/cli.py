"""``overcloud-devcloud``: the test bed's console command (cliff)."""

import dataclasses
import shlex
import sys

from cliff import app
from cliff import command
from cliff import commandmanager
from cliff import lister
from cliff import show

from overcloud_devcloud import bed as bed_mod
from overcloud_devcloud import guest
from overcloud_devcloud import layout as layout_mod
from overcloud_devcloud import process


class Up(command.Command):
    """Start devcloud-a and devcloud-b (cold the first time, warm after).

    Starts a private MariaDB and RabbitMQ and, for each cloud, Keystone,
    Glance, Placement, Nova (api, conductor, scheduler, compute), Neutron and
    Cinder (api, scheduler, volume, backup) on 127.0.0.1.  Does nothing
    when the bed is already running.
    """

    def take_action(self, parsed_args):
        result = bed_mod.Bed().up()
        layout = layout_mod.Layout()
        message = {'running': 'devcloud is already running',
                   'warm': 'devcloud restarted (warm)',
                   'cold': 'devcloud initialised and started (cold)'}[result]
        self.app.stderr.write('%s; clouds.yaml: %s\n'
                              % (message, layout.clouds_yaml))


class Down(command.Command):
    """Stop every devcloud process, keeping its data (or not, with --purge)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            '--purge', action='store_true',
            help='Also remove all state: databases, images, servers, '
                 'passwords and clouds.yaml (default: keep them)')
        return parser

    def take_action(self, parsed_args):
        stopped = bed_mod.Bed().down(purge=parsed_args.purge)
        if stopped:
            self.app.stderr.write('Stopped %d processes: %s\n'
                                  % (len(stopped), ', '.join(stopped)))
        else:
            self.app.stderr.write('devcloud is not running.\n')
        if parsed_args.purge:
            self.app.stderr.write('Removed the state in %s\n'
                                  % layout_mod.Layout().home)


class Status(lister.Lister):
    """Show each devcloud service: port, PID, whether it answers, memory."""

    def take_action(self, parsed_args):
        rows = bed_mod.Bed().status()
        columns = ('service', 'port', 'pid', 'running', 'answers', 'rss_mib',
                   'log', 'data')
        headers = ('Service', 'Port', 'PID', 'Running', 'Answers', 'RSS MiB',
                   'Log', 'Data')
        return headers, [tuple(row[c] for c in columns) for row in rows]


class Env(command.Command):
    """Print shell exports that point OpenStack clients at devcloud.

    Use as: eval "$(overcloud-devcloud env)"; then
    ``openstack --os-cloud devcloud-a ...`` or ``--os-cloud devcloud-b``.
    """

    def take_action(self, parsed_args):
        for key, value in bed_mod.Bed().environment().items():
            self.app.stdout.write('export %s=%s\n' % (key, shlex.quote(value)))


class Scenario(lister.Lister):
    """Build (or delete) the 3-tier project in one cloud of the bed.

    Two tenant networks behind a router with an external gateway, three
    security groups that refer to each other, a keypair, three servers
    (PREFIX-web, PREFIX-app, PREFIX-db) on fixed IPs and a floating IP.
    Anything left from an earlier build with the same prefix is deleted
    first.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--cloud', default='devcloud-a',
                            choices=layout_mod.CLOUDS,
                            help='Cloud to build in (default: devcloud-a)')
        parser.add_argument('--prefix', default='3t',
                            help='Name prefix of every resource '
                                 '(default: 3t)')
        parser.add_argument('--delete', action='store_true',
                            help='Only delete what the scenario made')
        parser.add_argument(
            '--volumes', action='store_true',
            help='Give the servers Cinder volumes: db boots from a volume '
                 'and has two data volumes (types standard and fast), app '
                 'has one data volume')
        return parser

    def take_action(self, parsed_args):
        import openstack

        from overcloud_devcloud import scenario
        config = openstack.config.OpenStackConfig(
            config_files=[str(layout_mod.Layout().clouds_yaml)],
            load_envvars=False)
        conn = openstack.connection.Connection(
            config=config.get_one(cloud=parsed_args.cloud))
        scenario.delete(conn, parsed_args.prefix)
        headers = ('Server', 'ID', 'Fixed IP', 'Floating IP', 'Volumes')
        if parsed_args.delete:
            return headers, []
        built = scenario.build(conn, parsed_args.prefix,
                               volumes=parsed_args.volumes)
        rows = []
        for tier, server in built.servers.items():
            port = built.ports[tier]
            rows.append((server.name, server.id,
                         port.fixed_ips[0]['ip_address'],
                         built.floating_ip.floating_ip_address
                         if tier == 'web' else '',
                         ' '.join('%s(%s)' % (v.name or v.id, v.volume_type)
                                  for v in built.volumes.get(tier, ()))))
        return headers, rows


class GuestWrite(show.ShowOne):
    """Change random blocks of a server's disk in place, as its guest would.

    Picks PERCENT % of the disk's blocks with a seeded generator and
    overwrites each with seeded random bytes, in place, then fsyncs: the
    same seed, percentage and disk always change the same bytes.  For
    tests and benchmarks of warm migration (copy while running, then move
    only what changed).  The server may be running.
    """

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('server', metavar='<server>',
                            help='Server name or ID')
        parser.add_argument('--cloud', default='devcloud-a',
                            choices=layout_mod.CLOUDS,
                            help='Cloud of the server (default: devcloud-a)')
        parser.add_argument('--percent', type=float, required=True,
                            metavar='<percent>',
                            help='Share of the disk\'s blocks to change, '
                                 '0 to 100')
        parser.add_argument('--seed', default='0', metavar='<seed>',
                            help='Seed of the block choice and of the bytes '
                                 '(default: 0)')
        parser.add_argument('--volume', metavar='<volume-id>',
                            help='Write this attached volume instead of the '
                                 'root disk (default: the root disk, which '
                                 'for a server booted from a volume is that '
                                 'volume)')
        parser.add_argument('--block-size', type=int,
                            default=guest.DEFAULT_BLOCK_SIZE,
                            metavar='<bytes>',
                            help='Size of a block (default: %d, a guest '
                                 'file-system block)'
                                 % guest.DEFAULT_BLOCK_SIZE)
        return parser

    def take_action(self, parsed_args):
        import openstack

        layout = layout_mod.Layout()
        config = openstack.config.OpenStackConfig(
            config_files=[str(layout.clouds_yaml)], load_envvars=False)
        conn = openstack.connection.Connection(
            config=config.get_one(cloud=parsed_args.cloud))
        try:
            server = conn.compute.find_server(parsed_args.server,
                                              ignore_missing=True)
            if server is None:
                raise guest.GuestError('No server %s in %s.' % (
                    parsed_args.server, parsed_args.cloud))
            server = conn.compute.get_server(server.id)
        finally:
            conn.close()
        disk = guest.disk_of(
            layout.instances_dir(parsed_args.cloud, server.compute_host),
            server.id, parsed_args.volume)
        report = guest.write(disk, parsed_args.percent, parsed_args.seed,
                             parsed_args.block_size)
        columns = ('server', 'disk', 'disk_bytes', 'block_size',
                   'blocks_changed', 'bytes_changed')
        values = dict(dataclasses.asdict(report), server=server.id)
        return columns, tuple(values[c] for c in columns)


COMMANDS = {'up': Up, 'down': Down, 'status': Status, 'env': Env,
            'scenario': Scenario, 'guest write': GuestWrite}


class DevcloudApp(app.App):

    def __init__(self):
        manager = commandmanager.CommandManager('overcloud_devcloud.cli')
        for name, cls in COMMANDS.items():
            manager.add_command(name, cls)
        super().__init__(
            description='devcloud: two real OpenStack clouds on 127.0.0.1 '
                        'for testing overcloud-migrate',
            version='0.1.0', command_manager=manager,
            deferred_help=True)

    def clean_up(self, cmd, result, err):
        pass

    def run_subcommand(self, argv):
        try:
            return super().run_subcommand(argv)
        except (bed_mod.BedError, process.ProcessError, ValueError) as exc:
            # ValueError covers guest.GuestError: a bad disk or percentage
            self.stderr.write('overcloud-devcloud: %s\n' % exc)
            return 1


def main(argv=None):
    return DevcloudApp().run(sys.argv[1:] if argv is None else argv)


if __name__ == '__main__':
    sys.exit(main())
