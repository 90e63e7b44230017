"""The command-line options of the transport drivers, in one place.

``openstack overcloud migrate`` adds them to its parser, turns them into the
chosen driver's keyword arguments, and ``openstack overcloud transport
list`` shows which belong to which driver. Each driver's options start with
``--<driver>-`` (R18 of the style guide).
"""

import dataclasses
import typing

from osc_lib import exceptions

from overcloud_migrate.common import options
from overcloud_migrate.transports import base

TOKEN_ENV = 'OVERCLOUD_MIGRATE_DTN_TOKEN'


@dataclasses.dataclass(frozen=True)
class Opt:
    transport: str
    flag: str
    key: str                  # the driver's keyword argument
    help: str
    metavar: typing.Optional[str] = None
    type: typing.Any = None
    flag_only: bool = False   # store_true
    required: bool = False

    @property
    def dest(self):
        return self.flag.lstrip('-').replace('-', '_')


OPTIONS = (
    Opt('sharedfs', '--sharedfs-dir', 'directory', metavar='<directory>',
        required=True,
        help='The staging directory (for example the '
             'NFS mount of a DTN export)'),
    Opt('ssh', '--ssh-host', 'host', metavar='<user@host>', required=True,
        help='The host the image is copied to'),
    Opt('ssh', '--ssh-dir', 'directory', metavar='<directory>',
        required=True,
        help='The directory on that host'),
    Opt('ssh', '--ssh-key', 'identity_file', metavar='<file>',
        help='The identity file (default: ssh\'s own)'),
    Opt('ssh', '--ssh-port', 'port', metavar='<port>', type=int,
        help='The port (default: 22)'),
    Opt('dtn', '--dtn-source', 'source_endpoint', metavar='<url>',
        required=True,
        help='URL of the source site\'s DTN service (overcloud-dtn-api), '
             'for example http://dtn-a:22641; it runs the DTN-to-DTN '
             'transfers, so the destination DTN must be registered in it '
             'with `openstack overcloud dtn node add` (required with '
             '--transport dtn)'),
    Opt('dtn', '--dtn-dest', 'dest_endpoint', metavar='<url>',
        required=True,
        help='URL of the destination site\'s DTN service; '
             'it is asked which node it is and must accept its token '
             '(required with --transport dtn)'),
    Opt('dtn', '--dtn-source-dir', 'source_dir', metavar='<directory>',
        required=True,
        help='The source DTN\'s export directory as mounted '
             'on this host (the NFS mount of the original design); each '
             'image is staged there as <image ID>.img, resumably (required '
             'with --transport dtn)'),
    Opt('dtn', '--dtn-dest-dir', 'dest_dir', metavar='<directory>',
        required=True,
        help='The destination DTN\'s export directory as '
             'mounted on this host; each image arrives there from the source '
             'DTN and is uploaded to the destination Glance from there '
             '(required with --transport dtn)'),
    Opt('dtn', '--dtn-source-path', 'source_path', metavar='<path>',
        help='The directory of --dtn-source-dir as the '
             'source DTN itself names it, when it is mounted elsewhere here '
             '(default: the same path as --dtn-source-dir)'),
    Opt('dtn', '--dtn-dest-path', 'dest_path', metavar='<path>',
        help='The directory of --dtn-dest-dir as the '
             'destination DTN itself names it (default: the same path as '
             '--dtn-dest-dir)'),
    Opt('dtn', '--dtn-source-token-file', 'source_token_file',
        metavar='<file>',
        help='File whose first line is the source DTN '
             'service\'s token; only the file name is journaled, the token '
             'is never logged (default: the token in the environment '
             'variable %s)' % TOKEN_ENV),
    Opt('dtn', '--dtn-dest-token-file', 'dest_token_file', metavar='<file>',
        help='File whose first line is the destination DTN '
             'service\'s token (default: the token in the environment '
             'variable %s)' % TOKEN_ENV),
    Opt('dtn', '--dtn-mover', 'mover', metavar='<mover>',
        help='How the DTNs move the bytes: gridftp (a '
             'third-party GridFTP transfer) or builtin (parallel streams '
             'that skip zeros); the source DTN service must offer it '
             '(default: the source DTN service\'s default mover)'),
    Opt('dtn', '--dtn-streams', 'streams', metavar='<count>',
        type=options.positive_int,
        help='Parallel TCP streams of each DTN transfer, 1 '
             'to 64 (default: the DTN service\'s default, 4)'),
    Opt('dtn', '--dtn-keep', 'keep', flag_only=True,
        help='Keep the staged copies on both DTNs after a '
             'verified upload (default: remove them)'),
)


def option_names(transport):
    """The command-line options of ``transport``, in --help order."""
    return [opt.flag for opt in OPTIONS if opt.transport == transport]


def transport_names():
    try:
        return base.names()
    except Exception:  # a broken install must not break --help
        return ['glance']


def add_transport_options(parser):
    """--transport and every driver's options, one group per driver."""
    move = parser.add_argument_group('moving servers')
    move.add_argument(
        '--transport', metavar='<name>', default='glance',
        help='How images cross: %s (see `openstack overcloud transport '
             'list`; default: glance)' % ', '.join(transport_names()))
    groups = {}
    for opt in OPTIONS:
        group = groups.get(opt.transport)
        if group is None:
            group = groups[opt.transport] = parser.add_argument_group(
                '%s transport' % opt.transport)
        if opt.flag_only:
            group.add_argument(opt.flag, dest=opt.dest, action='store_true',
                               help=opt.help)
        else:
            group.add_argument(opt.flag, dest=opt.dest, metavar=opt.metavar,
                               type=opt.type, help=opt.help)
    return move


def validate(args):
    """Refuse, before any API call, options of another transport and
    missing required options of the chosen one."""
    stray = [opt.flag for opt in OPTIONS if opt.transport != args.transport
             and getattr(args, opt.dest, None) not in (None, False)]
    if stray:
        raise exceptions.CommandError(
            '%s %s only with --transport %s, not --transport %s.' % (
                ', '.join(stray), 'goes' if len(stray) == 1 else 'go',
                ' or '.join(sorted({o.transport for o in OPTIONS
                                    if o.flag in stray})), args.transport))
    # With --handoff DIR, DIR is the driver's directory.
    given = {'directory'} if getattr(args, 'handoff', None) else set()
    missing = [opt.flag for opt in OPTIONS if opt.transport == args.transport
               and opt.required and opt.key not in given
               and getattr(args, opt.dest, None) is None]
    if missing:
        raise exceptions.CommandError('The %s transport needs %s.' % (
            args.transport, ', '.join(missing)))


def driver_options(args, timeout=None, handoff=None):
    """The keyword arguments of the chosen driver from ``args``; with
    ``handoff`` (``migrate --handoff DIR``) DIR is its directory."""
    result = {}
    for opt in OPTIONS:
        if opt.transport != args.transport:
            continue
        value = getattr(args, opt.dest, None)
        if value is not None and value is not False:
            result[opt.key] = value
    if handoff:
        result['directory'] = handoff
    if args.transport == 'dtn' and timeout:
        result['transfer_timeout'] = timeout
    return result
