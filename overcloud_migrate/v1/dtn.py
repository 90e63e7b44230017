"""``openstack overcloud dtn ...``: talk to a DTN service.

Transfers, directory listings, the transfer log and the node registry of
the DTN service (:mod:`overcloud_migrate.dtn`).  The commands need no cloud
credentials when the endpoint is given (``--dtn-endpoint`` or
``OVERCLOUD_MIGRATE_DTN_ENDPOINT``); see
:mod:`overcloud_migrate.cli.dtn_endpoint`.
"""

import logging
import re
import sys

from osc_lib.cli import format_columns
from osc_lib.command import command
from osc_lib import exceptions

from overcloud_migrate.cli import dtn_endpoint
from overcloud_migrate.cli import progress
from overcloud_migrate.dtn import client as dtn_client
from overcloud_migrate.dtn import constants
from overcloud_migrate.dtn import locations
from overcloud_migrate.dtn import paths
from overcloud_migrate.dtn import transfers

LOG = logging.getLogger(__name__)

TRANSFER_COLUMNS = ('ID', 'State', 'Source', 'Destination', 'Mover',
                    'Streams', 'Bytes Done', 'Bytes Total', 'Avg MB/s',
                    'Inst MB/s', 'Seconds', 'Error')
LISTING_COLUMNS = ('Node', 'Directory', 'Name', 'Type')
LOG_COLUMNS = ('Date', 'Source', 'Destination', 'File', 'MB/s', 'MB',
               'Seconds')
NODE_COLUMNS = ('ID', 'Name', 'Address', 'GridFTP', 'Data Port', 'Endpoint',
                'Exports', 'Local')
SYNC_COLUMNS = ('ID', 'State', 'Key', 'Round', 'Source', 'Destination',
                'Size', 'Bytes', 'Changed Bytes', 'Repaired Bytes', 'Seconds',
                'Error')
FORGET_COLUMNS = ('Key', 'Removed')
MAX_STREAMS = transfers.MAX_STREAMS
SYNC_KEY = re.compile(constants.SYNC_KEY_PATTERN)


def _check_location(text, what):
    """Validate NODE:/path or IP:PORT/path before any API call."""
    try:
        location = locations.parse(text, what)
        paths.normalise(location.path)
    except (locations.LocationError, paths.PathRefused) as exc:
        raise exceptions.CommandError('The %s %r is not usable: %s'
                                      % (what, text, exc))
    return location


def _call(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except dtn_client.DTNClientError as exc:
        raise exceptions.CommandError(str(exc))


def _transfer_row(row):
    return (row['id'], row['state'],
            '%s:%s' % (row['source']['node'], row['source']['path']),
            '%s:%s' % (row['dest']['node'], row['dest']['path']),
            row['mover'], row['streams'], row['bytes_done'],
            row['bytes_total'], row['avg_mb_per_s'], row['inst_mb_per_s'],
            row['seconds'], row['error'] or '')


def _sync_row(row):
    return (row['id'], row['state'], row.get('key'), row.get('round'),
            '%s:%s' % (row['source']['node'], row['source']['path']),
            '%s:%s' % (row['dest']['node'], row['dest']['path']),
            row.get('size'), row.get('bytes'), row.get('changed_bytes'),
            row.get('repaired_bytes'), row['seconds'], row['error'] or '')


def _check_key(key):
    if not SYNC_KEY.match(key):
        raise exceptions.CommandError(
            'The sync key %r is not valid (1-128 letters, digits, ".", "_" '
            'or "-").' % key)


def _node_row(node):
    return (node['id'], node['name'], node['address'],
            '%s://%s:%s' % (node['gridftp_scheme'], node['address'],
                            node['gridftp_port']),
            node['data_port'], node['endpoint'] or '',
            format_columns.DictColumn(node['exports']), node['local'])


class _DtnCommand:
    """Mix-in: DTN options and a client; no cloud login unless needed."""

    auth_required = False

    def add_dtn_options(self, parser):
        return dtn_endpoint.add_dtn_options(parser)

    def dtn(self, parsed_args):
        return dtn_endpoint.make_client(self.app, parsed_args)


def _add_run_options(parser, what):
    """--streams, --wait and --timeout of a transfer or a sync round."""
    parser.add_argument(
        '--streams', metavar='<count>', type=int, default=4,
        help='Parallel data streams, 1 to %d (default: 4)' % MAX_STREAMS)
    parser.add_argument(
        '--wait', action='store_true',
        help='Wait until the %s ends; fail if it fails' % what)
    parser.add_argument(
        '--timeout', metavar='<seconds>', type=float, default=3600.0,
        help='Give up waiting after this many seconds (default: 3600)')


def _check_run(parsed_args):
    """The locations, streams and timeout of a transfer or a sync round."""
    _check_location(parsed_args.source, 'source')
    _check_location(parsed_args.dest, 'destination')
    if not 1 <= parsed_args.streams <= MAX_STREAMS:
        raise exceptions.CommandError(
            '--streams must be from 1 to %d, not %d.'
            % (MAX_STREAMS, parsed_args.streams))
    if parsed_args.timeout <= 0:
        raise exceptions.CommandError('--timeout must be positive.')


class TransferDtn(_DtnCommand, command.ShowOne):
    """Transfer one file between two DTNs."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            'source', metavar='<source>',
            help='File to send: NODE:/path or GRIDFTP-IP:PORT/path (the '
                 'seed\'s form)')
        parser.add_argument(
            'dest', metavar='<dest>',
            help='Destination file, same forms; a path ending in / keeps '
                 'the source\'s file name')
        parser.add_argument(
            '--mover', metavar='<name>', default=None,
            help='Mover to use, e.g. gridftp or builtin (default: the '
                 'service\'s default, gridftp)')
        _add_run_options(parser, 'transfer')
        return self.add_dtn_options(parser)

    def take_action(self, parsed_args):
        _check_run(parsed_args)
        client = self.dtn(parsed_args)
        row = _call(client.start_transfer, parsed_args.source,
                    parsed_args.dest, mover=parsed_args.mover,
                    streams=parsed_args.streams)
        if parsed_args.wait:
            row = self._wait(client, row, parsed_args.timeout)
        return TRANSFER_COLUMNS, _transfer_row(row)

    def _wait(self, client, row, timeout):
        tty = sys.stderr.isatty()
        progress.say('Waiting for transfer %s...' % row['id'])

        def report(current):
            if tty:
                sys.stderr.write('\r%s: %d bytes, %.2f MB/s avg, %.2f MB/s '
                                 'inst   ' % (current['state'],
                                              current['bytes_done'],
                                              current['avg_mb_per_s'],
                                              current['inst_mb_per_s']))
                sys.stderr.flush()

        try:
            return client.wait_transfer(row['id'], timeout=timeout,
                                        progress=report)
        except dtn_client.DTNClientError as exc:
            raise exceptions.CommandError(str(exc))
        finally:
            if tty:
                sys.stderr.write('\n')


class SyncDtn(TransferDtn):
    """Run one round of a sync: bring an existing file on another DTN up to
    a file of this DTN, sending only the blocks that changed."""

    def get_parser(self, prog_name):
        parser = command.ShowOne.get_parser(self, prog_name)
        parser.add_argument(
            'source', metavar='<source>',
            help='File to read, on the DTN of the endpoint: NODE:/path')
        parser.add_argument(
            'dest', metavar='<dest>',
            help='Existing file at least as large on the destination DTN, '
                 'written in place: NODE:/path')
        parser.add_argument(
            '--key', metavar='<key>', required=True,
            help='Names the sync across its rounds (1-128 letters, digits, '
                 '".", "_" or "-"; e.g. the volume id)')
        _add_run_options(parser, 'round')
        return self.add_dtn_options(parser)

    def take_action(self, parsed_args):
        _check_run(parsed_args)
        _check_key(parsed_args.key)
        client = self.dtn(parsed_args)
        row = _call(client.start_sync, parsed_args.source, parsed_args.dest,
                    parsed_args.key, streams=parsed_args.streams)
        if parsed_args.wait:
            row = self._wait(client, row, parsed_args.timeout)
        return SYNC_COLUMNS, _sync_row(row)


class ForgetDtnSync(_DtnCommand, command.ShowOne):
    """Drop the saved signatures of a sync on both DTNs (its next round
    is round 1 again)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('key', metavar='<key>', help='The sync key')
        return self.add_dtn_options(parser)

    def take_action(self, parsed_args):
        _check_key(parsed_args.key)
        answer = _call(self.dtn(parsed_args).forget_sync, parsed_args.key)
        return FORGET_COLUMNS, (answer['key'], answer['removed'])


class ListDtn(_DtnCommand, command.Lister):
    """List a source and a destination directory (the seed's GET /ftp)."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('source_dir', metavar='<source-dir>',
                            help='NODE:/dir/ or GRIDFTP-IP:PORT/dir/')
        parser.add_argument('dest_dir', metavar='<dest-dir>',
                            help='NODE:/dir/ or GRIDFTP-IP:PORT/dir/')
        return self.add_dtn_options(parser)

    def take_action(self, parsed_args):
        wanted = [_check_location(parsed_args.source_dir, 'source directory'),
                  _check_location(parsed_args.dest_dir,
                                  'destination directory')]
        client = self.dtn(parsed_args)
        nodes = None
        rows = []
        for location in wanted:
            name = location.node
            if name is None:
                nodes = nodes or _call(client.nodes)
                matches = [n['name'] for n in nodes
                           if n['address'] == location.host
                           and n['gridftp_port'] == location.port]
                if not matches:
                    raise exceptions.CommandError(
                        'No DTN node is registered with the GridFTP address '
                        '%s:%d.' % (location.host, location.port))
                name = matches[0]
            answer = _call(client.listing, name, location.path)
            for entry in answer['entries']:
                is_dir = entry.endswith('/')
                rows.append((answer['node'], answer['path'],
                             entry.rstrip('/') if is_dir else entry,
                             'directory' if is_dir else 'file'))
        return LISTING_COLUMNS, rows


class ShowDtnLog(_DtnCommand, command.Lister):
    """Show the DTN service's transfer log."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('--since', metavar='<time>',
                            help='Only transfers from this ISO 8601 date or '
                                 'time on (default: all)')
        parser.add_argument('--node', metavar='<name>',
                            help='Only transfers from or to this node '
                                 '(default: all)')
        parser.add_argument('--file', metavar='<text>',
                            help='Only files whose path contains this text '
                                 '(default: all)')
        parser.add_argument('--limit', metavar='<count>', type=int,
                            help='At most this many rows (default: 1000)')
        return self.add_dtn_options(parser)

    def take_action(self, parsed_args):
        if parsed_args.limit is not None and parsed_args.limit < 1:
            raise exceptions.CommandError('--limit must be at least 1.')
        client = self.dtn(parsed_args)
        rows = _call(client.log, since=parsed_args.since,
                     node=parsed_args.node, file=parsed_args.file,
                     limit=parsed_args.limit)
        return LOG_COLUMNS, [(r['date'], r['source'], r['destination'],
                              r['file'], r['mb_per_s'], r['mb'],
                              r['seconds']) for r in rows]


class ListDtnNode(_DtnCommand, command.Lister):
    """List the DTN nodes the service knows."""

    def get_parser(self, prog_name):
        return self.add_dtn_options(super().get_parser(prog_name))

    def take_action(self, parsed_args):
        nodes = _call(self.dtn(parsed_args).nodes)
        return NODE_COLUMNS, [_node_row(node) for node in nodes]


def _export(text):
    name, sep, directory = text.partition('=')
    if not sep or not name or not directory:
        raise exceptions.CommandError(
            '--export needs NAME=DIR (for example data=/export/data), not '
            '%r.' % text)
    return name, directory


class AddDtnNode(_DtnCommand, command.ShowOne):
    """Register another DTN with this DTN service."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('name', metavar='<name>', help='Node name')
        parser.add_argument('--address', metavar='<host>', required=True,
                            help='Host name or IP address of the DTN\'s '
                                 'GridFTP server')
        parser.add_argument('--gridftp-port', metavar='<port>', type=int,
                            default=2811,
                            help='GridFTP port (default: 2811)')
        parser.add_argument('--gridftp-scheme', metavar='<scheme>',
                            choices=('ftp', 'gsiftp', 'sshftp'),
                            default='ftp',
                            help='ftp, gsiftp or sshftp (default: ftp)')
        parser.add_argument('--data-port', metavar='<port>', type=int,
                            help='Port of the DTN\'s builtin mover receiver '
                                 '(default: none)')
        parser.add_argument('--endpoint', metavar='<url>',
                            help='The DTN\'s own service URL (default: '
                                 'none)')
        parser.add_argument('--export', metavar='<name>=<dir>',
                            dest='exports', action='append', default=[],
                            help='A directory the DTN exports; repeat for '
                                 'more (at least one)')
        return self.add_dtn_options(parser)

    def take_action(self, parsed_args):
        if not parsed_args.exports:
            raise exceptions.CommandError(
                'Give at least one --export NAME=DIR for node %s.'
                % parsed_args.name)
        exports = dict(_export(text) for text in parsed_args.exports)
        node = _call(self.dtn(parsed_args).add_node, parsed_args.name,
                     parsed_args.address, exports,
                     gridftp_port=parsed_args.gridftp_port,
                     gridftp_scheme=parsed_args.gridftp_scheme,
                     data_port=parsed_args.data_port,
                     endpoint=parsed_args.endpoint)
        return NODE_COLUMNS, _node_row(node)


class DeleteDtnNode(_DtnCommand, command.Command):
    """Remove DTN nodes from the service's registry."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument('names', metavar='<name>', nargs='+',
                            help='Node(s) to delete')
        return self.add_dtn_options(parser)

    def take_action(self, parsed_args):
        client = self.dtn(parsed_args)
        failed = 0
        for name in parsed_args.names:
            try:
                client.delete_node(name)
            except dtn_client.DTNClientError as exc:
                failed += 1
                LOG.error('Cannot delete DTN node %s: %s', name, exc)
        if failed:
            raise exceptions.CommandError(
                '%d of %d DTN nodes could not be deleted.'
                % (failed, len(parsed_args.names)))
