"""``overcloud-dtn-api``: serve the DTN API with a threaded WSGI server.

Example (the seed's source DTN)::

    overcloud-dtn-api --node-name daejeon --export data=/export/data \\
        --gridftp-url-base ftp://210.119.43.34:2811 \\
        --token-file /etc/overcloud-migrate/dtn-token
"""

import argparse
import ipaddress
import re
import logging
import os
import signal
import socket
import socketserver
import sys
import threading
import urllib.parse
from wsgiref import simple_server

from overcloud_migrate.dtn import api
from overcloud_migrate.dtn import auth
from overcloud_migrate.dtn import checks
from overcloud_migrate.dtn import paths
from overcloud_migrate.dtn import store as store_mod
from overcloud_migrate.dtn import transfers

LOG = logging.getLogger('overcloud_migrate.dtn.service')

DEFAULT_PORT = 22641


DEFAULT_REQUEST_TIMEOUT = 30.0
DEFAULT_MAX_CONNECTIONS = 64
_QUERY = re.compile(r'\?[^ ]*')


class ThreadingWSGIServer(socketserver.ThreadingMixIn,
                          simple_server.WSGIServer):
    """wsgiref's server, one thread per connection, with two limits.

    ``request_timeout``: seconds a client may stay silent while it sends a
    request (a half-sent request no longer holds a thread for ever).
    ``max_connections``: connections served at once; the next ones are
    answered 503 and closed at once.
    """
    daemon_threads = True
    allow_reuse_address = True
    request_timeout = DEFAULT_REQUEST_TIMEOUT
    max_connections = DEFAULT_MAX_CONNECTIONS

    def server_activate(self):
        super().server_activate()
        self._slots = threading.BoundedSemaphore(self.max_connections)

    def get_request(self):
        conn, addr = super().get_request()
        conn.settimeout(self.request_timeout)
        return conn, addr

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            LOG.warning('refused a connection from %s: %d connections open '
                        'already', client_address[0], self.max_connections)
            try:
                request.sendall(b'HTTP/1.0 503 Service Unavailable\r\n'
                                b'Content-Length: 0\r\n'
                                b'Connection: close\r\n\r\n')
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (TimeoutError, socket.timeout,
                            ConnectionError)):
            LOG.info('%s: connection dropped: %s', client_address[0],
                     exc or type(exc).__name__)
            return
        LOG.exception('error serving %s', client_address[0])


class _Handler(simple_server.WSGIRequestHandler):
    def get_environ(self):
        # wsgiref turns "-" into "_" in header names, so X_Auth_Token would
        # pass for X-Auth-Token: drop every header with "_" in its name.
        for name in {key for key in self.headers.keys() if '_' in key}:
            del self.headers[name]
        return super().get_environ()

    def log_message(self, format, *args):  # noqa: A002 (wsgiref's name)
        # Never log a query string: it may carry a token.
        LOG.info('%s %s', self.address_string(),
                 _QUERY.sub('?<query not logged>', format % args))


def _export(spec):
    name, sep, directory = spec.partition('=')
    if not sep or not name or not directory:
        raise argparse.ArgumentTypeError(
            '%r is not NAME=DIR (for example data=/export/data)' % spec)
    try:
        directory = paths.normalise(directory)
    except paths.PathRefused as exc:
        raise argparse.ArgumentTypeError(str(exc))
    if directory == '/':
        raise argparse.ArgumentTypeError('an export may not be / itself')
    return name, directory


def _gridftp_base(value):
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme not in ('ftp', 'gsiftp', 'sshftp') or not parsed.hostname:
        raise argparse.ArgumentTypeError(
            '%r is not a GridFTP URL like ftp://HOST:2811' % value)
    return parsed.scheme, parsed.hostname, parsed.port or 2811


def _network(value):
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def build_parser():
    parser = argparse.ArgumentParser(
        prog='overcloud-dtn-api',
        description='The DTN transfer service of overcloud-migrate.')
    parser.add_argument('--host', default='0.0.0.0', metavar='<address>',
                        help='Address to listen on (default: 0.0.0.0)')
    parser.add_argument('--port', type=int, default=DEFAULT_PORT,
                        metavar='<port>',
                        help='Port to listen on; 0 picks a free one '
                             '(default: %d)' % DEFAULT_PORT)
    parser.add_argument('--export', dest='exports', action='append',
                        type=_export, default=[], metavar='<name>=<dir>',
                        help='A directory this DTN serves; repeat for more '
                             '(at least one is required)')
    parser.add_argument('--node-name', default=socket.gethostname().split(
        '.')[0], metavar='<name>',
        help='Name of this DTN in the node registry (default: host name)')
    parser.add_argument('--gridftp-url-base', type=_gridftp_base,
                        default=None, metavar='<url>',
                        help='URL of this DTN\'s GridFTP server as other '
                             'DTNs reach it, e.g. ftp://10.0.0.5:2811 '
                             '(default: ftp://<host name>:2811)')
    parser.add_argument('--data-port', type=int, default=None,
                        metavar='<port>',
                        help='Run the builtin mover\'s receiver on this port '
                             '(22642 is usual; needs --data-token-file; '
                             'default: no receiver)')
    parser.add_argument('--data-token-file', default=None, metavar='<file>',
                        help='File holding the secret the DTNs\' builtin '
                             'mover data ports share (default: none, the '
                             'builtin mover is then unusable)')
    parser.add_argument('--database-url', default=None, metavar='<url>',
                        help='SQLAlchemy database URL (default: %s)'
                             % store_mod.default_database_url())
    parser.add_argument('--sync-state-dir', default=None, metavar='<dir>',
                        help='Directory of the saved block signatures of '
                             'syncs (never inside an export; default: '
                             'syncs/ beside the SQLite database)')
    parser.add_argument('--token-file', default=None, metavar='<file>',
                        help='File holding the shared token clients send in '
                             'X-Auth-Token')
    parser.add_argument('--keystone-config', default=None, metavar='<file>',
                        help='INI file with a [keystone_authtoken] section: '
                             'validate Keystone tokens instead')
    parser.add_argument('--keystone-role', dest='keystone_roles',
                        action='append', default=None, metavar='<role>',
                        help='Role a Keystone token needs; repeatable '
                             '(default: admin)')
    parser.add_argument('--insecure-no-auth', action='store_true',
                        help='Serve WITHOUT authentication (only on a closed '
                             'test network; logs a warning per request)')
    parser.add_argument('--default-mover', default=transfers.DEFAULT_MOVER,
                        metavar='<name>',
                        help='Mover for the seed API and transfers that name '
                             'none (default: %s)' % transfers.DEFAULT_MOVER)
    parser.add_argument('--max-body', type=int, default=api.MAX_BODY,
                        metavar='<bytes>',
                        help='Largest request body accepted (default: %d)'
                             % api.MAX_BODY)
    parser.add_argument('--allow-network', dest='allowed_networks',
                        action='append', type=_network, default=[],
                        metavar='<cidr>',
                        help='A network the DTN may talk to: nodes outside '
                             'every such network are refused when registered '
                             'and when a transfer starts; repeatable '
                             '(default: any network, with a warning)')
    parser.add_argument('--request-timeout', type=float,
                        default=DEFAULT_REQUEST_TIMEOUT, metavar='<seconds>',
                        help='Seconds a client may stay silent in the middle '
                             'of a request (default: %s)'
                             % DEFAULT_REQUEST_TIMEOUT)
    parser.add_argument('--max-connections', type=int,
                        default=DEFAULT_MAX_CONNECTIONS, metavar='<count>',
                        help='HTTP connections served at once (default: %d)'
                             % DEFAULT_MAX_CONNECTIONS)
    parser.add_argument('--stale-part-hours', type=float, default=24.0,
                        metavar='<hours>',
                        help='At start, remove temporary files of transfers '
                             '(hidden GridFTP parts, builtin .part files) '
                             'untouched for this long from the exports '
                             '(default: 24)')
    parser.add_argument('--log-level', default='INFO', metavar='<level>',
                        help='Logging level (default: INFO)')
    return parser


def make_application(args, store):
    """The authenticated WSGI application and its transfer manager."""
    scheme, host, port = args.gridftp_url_base or (
        'ftp', socket.getfqdn(), 2811)
    store.upsert_local_node(args.node_name, host, port, scheme,
                            args.data_port, dict(args.exports))
    interrupted = store.fail_interrupted()
    if interrupted:
        LOG.warning('%d transfers were left unfinished by the previous run; '
                    'marked failed', interrupted)
    manager = transfers.TransferManager(store)
    threading.Thread(target=_clean_earlier_life,
                     args=(store, dict(args.exports),
                           args.stale_part_hours * 3600.0),
                     name='dtn-cleanup', daemon=True).start()
    data_token = (auth.read_token_file(args.data_token_file)
                  if args.data_token_file else None)
    app = api.create_app(store, manager, api.Config(
        local_node=args.node_name, default_mover=args.default_mover,
        max_body=args.max_body, data_token=data_token,
        sync_state_dir=sync_state_dir(args)[0],
        sync_state_problem=sync_state_dir(args)[1],
        allowed_networks=checks.NetworkAllowList(args.allowed_networks)))
    if not args.allowed_networks:
        LOG.warning('no --allow-network given: registered nodes may name any '
                    'address, and this DTN will connect to it')
    token = auth.read_token_file(args.token_file) if args.token_file else None
    wrapped = auth.wrap(app, token=token,
                        keystone_config=args.keystone_config,
                        keystone_roles=args.keystone_roles or ('admin',),
                        insecure_no_auth=args.insecure_no_auth)
    return wrapped, manager, data_token


def _clean_earlier_life(store, exports, max_age):
    """What earlier runs left: temporary files on other nodes (recorded in
    the database) and stale ones in our own exports."""
    try:
        pending = transfers.clean_leftovers(store, transfers.MoverRegistry())
        if pending:
            LOG.warning('%d temporary files of earlier transfers could not be '
                        'removed yet (their node is unreachable)', pending)
        transfers.sweep_stale_parts(exports, max_age)
    except Exception:
        LOG.exception('cleaning what earlier transfers left failed')


def sync_state_dir(args):
    """(where syncs keep their signatures, why syncs are refused or None):
    never inside an export."""
    from overcloud_migrate.dtn import syncs
    directory = os.path.abspath(args.sync_state_dir
                                or syncs.default_state_dir(args.database_url))
    return directory, syncs.state_dir_problem(directory, dict(args.exports))


def start_receiver(args, token):
    """The builtin mover's receiver on --data-port, or None."""
    if args.data_port is None:
        return None
    if not token:
        raise auth.AuthConfigError('--data-port needs --data-token-file (the '
                                   'data port never runs open).')
    from overcloud_migrate.dtn.movers import blockpipe  # needs cryptography
    allowed = checks.NetworkAllowList(args.allowed_networks)
    from overcloud_migrate.dtn.movers.blockpipe import delta_receiver
    receiver = blockpipe.Receiver(
        args.host, args.data_port,
        transfers.receiver_resolver(dict(args.exports)), token,
        peer_allowed=allowed.allows if allowed else None)
    delta_receiver.install(receiver, *sync_state_dir(args))
    return receiver.start()


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper(), logging.INFO),
        format='%(asctime)s %(levelname)s %(name)s: %(message)s',
        stream=sys.stderr)
    if not args.exports:
        print('overcloud-dtn-api: at least one --export NAME=DIR is required',
              file=sys.stderr)
        return 2
    try:
        store = store_mod.Store(args.database_url)
        application, manager, data_token = make_application(args, store)
        receiver = start_receiver(args, data_token)
    except (auth.AuthConfigError, ImportError, OSError) as exc:
        print('overcloud-dtn-api: %s' % exc, file=sys.stderr)
        return 2
    server_class = type('DTNServer', (ThreadingWSGIServer,), {
        'request_timeout': args.request_timeout,
        'max_connections': max(1, args.max_connections)})
    server = simple_server.make_server(
        args.host, args.port, application, server_class=server_class,
        handler_class=_Handler)
    host, port = server.server_address[:2]

    def _stop(signum, frame):
        LOG.info('signal %d: stopping', signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # Said only once a signal can stop us cleanly: whoever waits for this
    # line may send SIGTERM right after it.
    print('overcloud-dtn-api: serving http://%s:%d/ (node %s, auth: %s, '
          'builtin data port: %s)' % (
              host, port, args.node_name, getattr(application, 'mode', '?'),
              receiver.port if receiver else 'none'), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        manager.shutdown()
        if receiver is not None:
            receiver.stop()
        server.server_close()
        store.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
