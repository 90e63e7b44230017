"""``openstack overcloud receiver run|status``: the destination side of
``openstack overcloud migrate --handoff``."""

import logging
import os
import signal
import sys

from osc_lib.command import command
from osc_lib import exceptions

from overcloud_migrate import clouds
from overcloud_migrate import journal as journal_mod
from overcloud_migrate.cli import options
from overcloud_migrate.receiver import processor as processor_mod
from overcloud_migrate.receiver import service
from overcloud_migrate.receiver import status as status_mod

LOG = logging.getLogger(__name__)
RECEIVER_JOURNAL = 'receiver.sqlite'


def _watch_option(parser):
    parser.add_argument(
        '--watch', metavar='<directory>', required=True,
        help='The handoff directory (where `openstack overcloud migrate '
             '--handoff` leaves items), for example the NFS mount of a DTN '
             'export')
    return parser


def _log_to_stderr():
    """INFO lines of the Receiver on stderr, whatever OSC's verbosity."""
    logger = logging.getLogger('overcloud_migrate.receiver')
    if not any(getattr(h, '_receiver', False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler._receiver = True
        handler.setFormatter(logging.Formatter(
            '%(asctime)s %(levelname)s %(message)s'))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


class ReceiverRun(command.Command):
    """Watch a handoff directory and bring each item up in the destination.

    Runs in the foreground until SIGTERM or SIGINT and logs to stderr (run
    it as a systemd service, see the user guide). Linux inotify reports
    each item whose completion marker arrives; items already complete at
    start are processed first, including those a stopped or killed
    receiver had begun. For each item the receiver checks the marker's
    sizes and sha512 and the plan itself, prechecks the destination
    (nothing is created when a check fails), rebuilds the server's network
    world (networks, subnets, routers, security groups, ports with their
    fixed IPs and MAC addresses, floating IPs), uploads the image and each
    volume's file verifying size and sha512 (a mismatch deletes it),
    creates the volumes from them (with the volume types the source
    mapped), boots the server with the same block device mapping and
    verifies it is ACTIVE on its fixed IPs with its volumes attached in
    order. It then writes status.json into
    the item (state and reason, for the source side) and moves the item to
    done/ or failed/ under the watch directory.

    Every step finds its earlier effect again (journal, tags, image
    properties), so an item interrupted by a crash is finished at the next
    start without a duplicate image, volume, port or server. On SIGTERM/SIGINT the
    receiver takes no new item, lets the items in flight finish and exits
    0; a second signal exits at once and leaves them to the next start.
    """

    auth_required = False

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        _watch_option(parser)
        options.add_dest_cloud_options(parser)
        parser.add_argument(
            '--workers', metavar='<count>', type=options.positive_int,
            default=2,
            help='Process this many items at once (default: 2)')
        parser.add_argument(
            '--timeout', metavar='<seconds>', type=options.positive_int,
            default=600,
            help='Wait at most this long for each upload and boot '
                 '(default: 600)')
        parser.add_argument(
            '--floating-ip-mode', choices=('keep', 'new', 'none'),
            default='keep',
            help='keep: the same floating address when the destination has '
                 'it free (needs admin), else a new one; new: a new address; '
                 'none: no floating IPs (default: keep)')
        parser.add_argument(
            '--rescan-interval', metavar='<seconds>',
            type=options.non_negative_int, default=0,
            help='Also look for complete items every this many seconds. '
                 'inotify sees only writes made on this host: use it when '
                 'the items are written by another host into a network '
                 'file system such as an NFS mount (default: 0, inotify '
                 'only)')
        parser.add_argument(
            '--once', action='store_true',
            help='Process the complete items present now, then exit '
                 '(non-zero if any failed) instead of watching')
        parser.add_argument(
            '--journal-url', metavar='<url>',
            help='Database URL of the receiver\'s journal (Env: %s; '
                 'default: SQLite %s in ~/.local/state/overcloud-migrate/)'
                 % (journal_mod.JOURNAL_URL_ENV, RECEIVER_JOURNAL))
        return parser

    def take_action(self, parsed_args):
        args = parsed_args
        _log_to_stderr()
        root = os.path.abspath(args.watch)
        if not os.path.isdir(root):
            raise exceptions.CommandError(
                'The watch directory %s does not exist.' % root)
        dest_name = clouds.dest_cloud_name(args.dest_cloud)

        def connect():
            return clouds.open_destination(
                self.app.cloud_config, dest_name, args.dest_region,
                args.dest_project)

        try:
            first = connect()
            identity = clouds.identity_of(first, dest_name)
            first.close()
            journal = journal_mod.Journal(
                args.journal_url or os.environ.get(
                    journal_mod.JOURNAL_URL_ENV)
                or journal_mod.default_url(RECEIVER_JOURNAL))
            processor = processor_mod.Processor(
                root, connect, identity, journal, processor_mod.Options(
                    timeout=args.timeout,
                    floating_ip_mode=args.floating_ip_mode))
            receiver = service.Receiver(
                root, processor, args.workers, once=args.once,
                rescan_interval=max(0, args.rescan_interval))
        except clouds.CloudError as exc:
            raise exceptions.CommandError(str(exc))
        signals = []

        def on_signal(signum, _frame):
            signals.append(signum)
            if len(signals) > 1:
                LOG.warning('Second signal: exiting now; the items in '
                            'flight resume at the next start')
                os._exit(1)
            logging.getLogger('overcloud_migrate.receiver').info(
                'Signal %d: finishing the items in flight, taking no new '
                'one (signal again to exit at once)', signum)
            receiver.stop()

        previous = {s: signal.signal(s, on_signal)
                    for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            results = receiver.run()
        except service.ReceiverError as exc:
            raise exceptions.CommandError(str(exc))
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        failed = [n for n, state in results.items() if state != 'done']
        if args.once and failed:
            raise exceptions.CommandError(
                '%d of %d items failed (see `openstack overcloud receiver '
                'status --watch %s`).' % (len(failed), len(results), root))


class ReceiverStatus(command.Lister):
    """Show the items of a handoff directory: server, state and reason.

    One row per item: waiting (pending: complete, not yet taken;
    incomplete: no marker yet), processing, done or failed (with the
    reason), from the items' markers and the status.json the receiver
    writes. Reads only files: no cloud is contacted.
    """

    auth_required = False

    def get_parser(self, prog_name):
        return _watch_option(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        root = os.path.abspath(parsed_args.watch)
        if not os.path.isdir(root):
            raise exceptions.CommandError(
                'The watch directory %s does not exist.' % root)
        return status_mod.COLUMNS, status_mod.rows(root)
