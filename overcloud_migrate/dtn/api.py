"""The DTN service's WSGI application (Flask, synchronous).

Two faces:

* the seed's API, kept so its curl scripts work: ``GET /`` (nodes),
  ``GET /log``, ``GET /ftp`` (list two directories) and ``POST /ftp`` (a
  third-party transfer that answers when done), with ``/info`` and
  ``/transfer`` as aliases of ``/ftp``; plain-text answers in the seed's
  shape (JSON when the client asks for ``application/json``);
* the versioned JSON API under ``/v1`` (see :mod:`.openapi`).

Errors are JSON everywhere: ``{"error": {"code": 400, "message": "..."}}``.
Authentication is a WSGI middleware around this app (:mod:`.auth`).
"""

import dataclasses
import datetime
import logging
import os
import posixpath
import re

import flask
from werkzeug import exceptions as http_exc

from overcloud_migrate.dtn import checks
from overcloud_migrate.dtn import constants
from overcloud_migrate.dtn import locations
from overcloud_migrate.dtn import openapi
from overcloud_migrate.dtn import paths
from overcloud_migrate.dtn import store as store_mod
from overcloud_migrate.dtn import syncs
from overcloud_migrate.dtn import transfers
from overcloud_migrate.dtn.movers import base
from overcloud_migrate.dtn.movers import gridftp
from overcloud_migrate.exceptions import OvercloudMigrateError

LOG = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
_SCHEMES = ('ftp', 'gsiftp', 'sshftp')
_TEMP_NAME = re.compile(r'^\..+\.part-[0-9a-f]{8}$')


class ApiError(OvercloudMigrateError):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass
class Config:
    """What the service was started with."""
    local_node: str = None
    default_mover: str = transfers.DEFAULT_MOVER
    default_streams: int = 4
    max_body: int = MAX_BODY
    seed_transfer_timeout: float = 24 * 3600.0
    listing_timeout: float = 60.0
    movers: transfers.MoverRegistry = dataclasses.field(
        default_factory=transfers.MoverRegistry)
    data_token: str = None   # the builtin mover's data port secret
    #: the networks nodes may be in (--allow-network); empty: any
    allowed_networks: checks.NetworkAllowList = dataclasses.field(
        default_factory=checks.NetworkAllowList)
    #: where this DTN keeps the saved signatures of syncs (None: syncs/
    #: beside the default database)
    sync_state_dir: str = None
    #: why syncs are refused here (a state directory inside an export)
    sync_state_problem: str = None


# -- request helpers -----------------------------------------------------

def _json_body(allowed, required=()):
    raw = flask.request.get_data(cache=False)
    if not raw.strip():
        raise ApiError(400, 'The request needs a JSON object body.')
    body = checks.parse_json(raw)
    if not isinstance(body, dict):
        raise ApiError(400, 'The request body must be a JSON object, not %s.'
                       % type(body).__name__)
    unknown = set(body) - set(allowed)
    if unknown:
        raise ApiError(400, 'Unknown fields in the request: %s (allowed: %s).'
                       % (', '.join(sorted(unknown)),
                          ', '.join(sorted(allowed))))
    missing = [key for key in required if key not in body]
    if missing:
        raise ApiError(400, 'Missing fields in the request: %s.'
                       % ', '.join(missing))
    return body


def _int_field(body, key, default, low, high, nullable=False):
    value = body.get(key, default)
    if value is None and (nullable or key not in body):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or \
            not low <= value <= high:
        raise ApiError(400, 'The field %r must be an integer from %d to %d, '
                       'not %r.' % (key, low, high, value))
    return value


def _wants_json():
    # curl sends */*: the seed's plain text wins unless JSON is preferred
    accept = flask.request.accept_mimetypes
    return accept.best_match(['text/plain', 'application/json']) == \
        'application/json'


def _text(body, code=200):
    return flask.Response(body, status=code,
                          mimetype='text/plain; charset=utf-8')


# -- domain helpers --------------------------------------------------------

def _store():
    return flask.current_app.config['DTN_STORE']


def _manager():
    return flask.current_app.config['DTN_TRANSFERS']


def _config():
    return flask.current_app.config['DTN_CONFIG']


def _node_for(location):
    if location.node is not None:
        return _store().get_node(location.node)
    return _store().find_node_by_address(location.host, location.port)


def _confine(node, path, directory=False):
    try:
        if directory:
            return paths.confine_directory(path, node['exports'],
                                           local=node['local'])
        return paths.confine(path, node['exports'], local=node['local'])
    except paths.PathRefused as exc:
        raise ApiError(403 if isinstance(exc, paths.PathOutside) else 400,
                       '%s (node %s)' % (exc, node['name']))


def _parse_location(value, what):
    return locations.parse(value, what)


def _list(node, confined):
    """Sorted entry names of a confined directory (directories end in /)."""
    if node['local']:
        try:
            # from the export root, no symlink followed (the checked path
            # may have been swapped meanwhile)
            fd = paths.open_dir_beneath(confined.root, [
                part for part in confined.relative.split('/') if part])
            try:
                with os.scandir(fd) as entries:
                    names = [entry.name + ('/' if entry.is_dir() else '')
                             for entry in entries]
            finally:
                os.close(fd)
        except OSError as exc:
            raise ApiError(404, 'Cannot list %s on node %s: %s' % (
                confined.path, node['name'], exc.strerror or exc))
    else:
        names = gridftp.list_directory(
            node['gridftp_scheme'], node['address'], node['gridftp_port'],
            confined.path, timeout=_config().listing_timeout)
    return sorted(name for name in names
                  if not _TEMP_NAME.match(name.rstrip('/')))


def _dir_url(node, path):
    if not path.endswith('/'):
        path += '/'
    return gridftp.url(node['gridftp_scheme'], node['address'],
                       node['gridftp_port'], path)


def _resolve_pair(source_value, dest_value):
    """Both locations checked (nodes, allow-list, confinement, files);
    (source_node, source, dest_node, dest)."""
    source_loc = _parse_location(source_value, 'source')
    dest_loc = _parse_location(dest_value, 'destination')
    source_node = _node_for(source_loc)
    dest_node = _node_for(dest_loc)
    for node in (source_node, dest_node):
        if not node['local']:
            _config().allowed_networks.check(node['address'],
                                             'address of node %s'
                                             % node['name'])
    source = _confine(source_node, source_loc.path)
    dest_path = dest_loc.path
    if dest_path.endswith('/'):
        dest_path += posixpath.basename(source.path)
    dest = _confine(dest_node, dest_path)
    if not source.relative:
        raise ApiError(400, 'The source %s is an export root, not a file.'
                       % source.path)
    if not dest.relative:
        raise ApiError(400, 'The destination %s is an export root, not a '
                       'file.' % dest.path)
    if source_node['local'] and not os.path.isfile(source.path):
        raise ApiError(404, 'The source file %s does not exist on node %s.'
                       % (source.path, source_node['name']))
    if dest_node['local'] and not os.path.isdir(posixpath.dirname(dest.path)):
        raise ApiError(404, 'The destination directory %s does not exist on '
                       'node %s.' % (posixpath.dirname(dest.path),
                                     dest_node['name']))
    if (source_node['name'], source.path) == (dest_node['name'], dest.path):
        raise ApiError(400, 'The source and the destination are the same '
                       'file.')
    return source_node, source, dest_node, dest


def _start_transfer(source_value, dest_value, mover_name, streams):
    """Validate everything, then start; returns (row, nodes, confined)."""
    source_node, source, dest_node, dest = _resolve_pair(source_value,
                                                         dest_value)
    movers = _config().movers
    if mover_name not in movers.names():
        raise ApiError(400, 'No mover named %r; valid movers: %s.' % (
            mover_name, ', '.join(movers.names()) or 'none'))
    mover = movers.load(mover_name)
    mover.check()
    # what the mover would make of the names (GridFTP: ASCII, no %XX)
    mover.check_path(source.path)
    mover.check_path(dest.path)
    request = transfers.build_request(
        mover, source_node, source, dest_node, dest, streams,
        data_token=_config().data_token)
    size = os.path.getsize(source.path) if source_node['local'] else None
    row = _manager().start(mover_name, mover, request, source_node['name'],
                           source.path, dest_node['name'], dest.path,
                           bytes_total=size)
    return row, source_node, source, dest_node, dest


def _start_sync(source_value, dest_value, key, streams, raw=False):
    """Validate a sync round, then start it; the transfer row.  ``raw``:
    the source must be a raw disk (not a disk image container)."""
    if not isinstance(key, str) or not re.match(constants.SYNC_KEY_PATTERN,
                                                key):
        raise ApiError(400, 'The sync key %r is not valid (1-128 letters, '
                       'digits, ".", "_" or "-").' % (key,))
    if isinstance(dest_value, str) and dest_value.endswith('/'):
        raise ApiError(400, 'The destination of a sync is a file (an '
                       'existing one of the source\'s size), not the '
                       'directory %s.' % dest_value)
    source_node, source, dest_node, dest = _resolve_pair(source_value,
                                                         dest_value)
    cfg = _config()
    if cfg.sync_state_problem:
        raise ApiError(503, 'Syncs are refused on this DTN: %s.'
                       % cfg.sync_state_problem)
    if not source_node['local']:
        raise ApiError(400, 'A sync reads its source on this DTN (%s); %s is '
                       'on node %s.' % (cfg.local_node, source.path,
                                        source_node['name']))
    if not dest_node.get('data_port'):
        raise ApiError(503, 'The DTN node %r has no data port registered: a '
                       'sync needs its builtin receiver.' % dest_node['name'])
    if not cfg.data_token:
        raise ApiError(503, 'This DTN has no data token (--data-token-file): '
                       'a sync cannot authenticate to the destination.')
    size = os.path.getsize(source.path)
    if raw:
        container = _container_of(source)
        if container:
            raise ApiError(400, 'The source %s is a %s image, not a raw '
                           'disk: a sync copies its bytes as they are, so '
                           'the destination would not boot (nothing '
                           'written).' % (source.path, container))
    if dest_node['local']:
        try:
            fd = paths.open_beneath(dest.root, dest.relative)
        except FileNotFoundError:
            raise ApiError(404, 'The destination file %s does not exist on '
                           'node %s: a sync writes into an existing file of '
                           '%d bytes.' % (dest.path, dest_node['name'], size))
        except OSError as exc:
            raise ApiError(400, 'Cannot open the destination %s: %s'
                           % (dest.path, exc.strerror or exc))
        try:
            have = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if have < size:
            raise ApiError(400, 'The destination %s is %d bytes and the source '
                           '%s %d bytes: a sync writes in place into a file '
                           'at least as large (nothing written).' % (
                               dest.path, have, source.path, size))
    request = base.TransferRequest(
        source_path=source.path, dest_host=dest_node['address'],
        dest_port=dest_node['data_port'],
        dest_path='%s/%s' % (dest.export, dest.relative), streams=streams,
        options={'token': cfg.data_token, 'source_root': source.root})
    peer = {'node': dest_node['name']}
    return _syncs().start(_manager(), _store(), request, key,
                          source_node['name'], source.path,
                          dest_node['name'], dest.path, size, peer)


#: leading bytes of the disk image containers a raw sync refuses
_CONTAINERS = ((b'QFI\xfb', 'qcow2'), (b'KDMV', 'VMDK'),
               (b'vhdxfile', 'VHDX'))


def _container_of(location):
    """The container format ``location``'s file starts as, or None."""
    try:
        fd = paths.open_beneath(location.root, location.relative)
    except OSError as exc:
        raise ApiError(400, 'Cannot open the source %s: %s'
                       % (location.path, exc.strerror or exc))
    try:
        head = os.pread(fd, 8, 0)
    finally:
        os.close(fd)
    for magic, name in _CONTAINERS:
        if head.startswith(magic):
            return name
    return None


def _syncs():
    return flask.current_app.config['DTN_SYNCS']


# -- the seed's API --------------------------------------------------------

bp_seed = flask.Blueprint('seed', __name__)


@bp_seed.get('/')
def seed_nodes():
    nodes = _store().list_nodes()
    if _wants_json():
        return {'nodes': [{'id': n['id'], 'name': n['name'],
                           'address': n['address']} for n in nodes]}
    lines = ['%-4s %-20s %s' % ('id', 'name', 'address')]
    lines += ['%-4d %-20s %s' % (n['id'], n['name'], n['address'])
              for n in nodes]
    return _text('\n'.join(lines) + '\n')


@bp_seed.get('/log')
def seed_log():
    rows = _store().log()
    if _wants_json():
        return {'log': rows}
    lines = ['%-25s %-12s %-12s %-40s %10s %12s %10s' % (
        'date', 'source', 'destination', 'file', 'MB/s', 'MB', 'seconds')]
    lines += ['%-25s %-12s %-12s %-40s %10.2f %12.3f %10.3f' % (
        r['date'], r['source'], r['destination'], r['file'], r['mb_per_s'],
        r['mb'], r['seconds']) for r in rows]
    return _text('\n'.join(lines) + '\n')


def _seed_body():
    body = _json_body(allowed=('Source', 'Dest'), required=('Source', 'Dest'))
    for key in ('Source', 'Dest'):
        if not isinstance(body[key], str):
            raise ApiError(400, 'The field %r must be a string like '
                           '"IP:2811/dir/".' % key)
    return body


@bp_seed.get('/ftp')
@bp_seed.get('/info')
@bp_seed.get('/transfer')
def seed_list():
    body = _seed_body()
    answers = []
    for key, what in (('Source', 'source'), ('Dest', 'destination')):
        loc = _parse_location(body[key], what)
        node = _node_for(loc)
        confined = _confine(node, loc.path, directory=True)
        answers.append((node, confined, _list(node, confined)))
    if _wants_json():
        return {'listings': [{'node': n['name'], 'path': c.path,
                              'url': _dir_url(n, c.path), 'entries': e}
                             for n, c, e in answers]}
    out = []
    for node, confined, entries in answers:
        out.append(_dir_url(node, confined.path))
        out.extend('  ' + name for name in entries)
        out.append('')
    return _text('\n'.join(out) + '\n')


@bp_seed.post('/ftp')
@bp_seed.post('/info')
@bp_seed.post('/transfer')
def seed_transfer():
    body = _seed_body()
    cfg = _config()
    row, src_node, source, dst_node, dest = _start_transfer(
        body['Source'], body['Dest'], cfg.default_mover, cfg.default_streams)
    row = _manager().wait(row['id'], timeout=cfg.seed_transfer_timeout)
    if row['state'] == store_mod.CANCELLED:
        raise ApiError(409, 'The transfer %s was cancelled.' % row['id'])
    if row['state'] != store_mod.DONE:
        raise ApiError(502, 'The transfer %s failed: %s'
                       % (row['id'], row['error'] or row['state']))
    if _wants_json():
        return {'transfer': row}
    src_name = posixpath.basename(source.path)
    dst_name = posixpath.basename(dest.path)
    names = src_name if src_name == dst_name else '%s  ->  %s' % (src_name,
                                                                dst_name)
    inst = row['inst_mb_per_s'] or row['avg_mb_per_s']
    text = ('Source: %s\nDest:   %s\n  %s\n\n%14d bytes %11.2f MB/sec avg '
            '%11.2f MB/sec inst\n' % (
                _dir_url(src_node, posixpath.dirname(source.path)),
                _dir_url(dst_node, posixpath.dirname(dest.path)), names,
                row['bytes_done'], row['avg_mb_per_s'], inst))
    return _text(text)


# -- v1 --------------------------------------------------------------------

bp_v1 = flask.Blueprint('v1', __name__, url_prefix='/v1')


@bp_v1.get('/')
def v1_root():
    return {'version': 'v1', 'movers': _config().movers.names(),
            'local_node': _config().local_node,
            # what a client may ask for beyond transfers
            'features': ['sync']}


@bp_v1.get('/openapi.json')
def v1_openapi():
    return openapi.document()


@bp_v1.get('/nodes')
def v1_nodes():
    return {'nodes': _store().list_nodes()}


def _validate_node(body):
    name = body.get('name')
    if not isinstance(name, str) or not locations.NODE_NAME.match(name):
        raise ApiError(400, 'The node name %r is not valid (1-64 letters, '
                       'digits, ".", "_" or "-", starting with a letter or '
                       'digit).' % (name,))
    address = checks.check_address(body.get('address'))
    _config().allowed_networks.check(address, 'node address')
    scheme = body.get('gridftp_scheme', 'ftp')
    if scheme not in _SCHEMES:
        raise ApiError(400, 'The field gridftp_scheme must be one of %s, not '
                       '%r.' % (', '.join(_SCHEMES), scheme))
    endpoint = body.get('endpoint')
    if endpoint is not None and (not isinstance(endpoint, str) or not re.match(
            r'^https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/-]*)?$',
            endpoint)):
        raise ApiError(400, 'The endpoint %r is not an http(s) URL.'
                       % (endpoint,))
    exports = body.get('exports', {})
    if not isinstance(exports, dict) or not exports:
        raise ApiError(400, 'The field exports must be a non-empty object '
                       'mapping export names to absolute directories.')
    clean = {}
    for key, value in exports.items():
        if not locations.NODE_NAME.match(key):
            raise ApiError(400, 'The export name %r is not valid.' % key)
        try:
            clean[key] = paths.normalise(value)
        except paths.PathRefused as exc:
            raise ApiError(400, 'The export %r: %s' % (key, exc))
        if clean[key] == '/':
            raise ApiError(400, 'The export %r may not be the root '
                           'directory /.' % key)
    return dict(
        name=name, address=address,
        gridftp_port=_int_field(body, 'gridftp_port', 2811, 1, 65535),
        gridftp_scheme=scheme,
        data_port=_int_field(body, 'data_port', None, 1, 65535,
                             nullable=True),
        endpoint=endpoint, exports=clean)


@bp_v1.post('/nodes')
def v1_add_node():
    body = _json_body(allowed=('name', 'address', 'gridftp_port',
                               'gridftp_scheme', 'data_port', 'endpoint',
                               'exports'),
                      required=('name', 'address', 'exports'))
    fields = _validate_node(body)
    return {'node': _store().add_node(**fields)}, 201


def _checked_name(name, what='node'):
    if not locations.NODE_NAME.match(name):
        raise ApiError(400, 'The %s name %r is not valid.' % (what, name))
    return name


@bp_v1.get('/nodes/<name>')
def v1_node(name):
    return {'node': _store().get_node(_checked_name(name))}


@bp_v1.delete('/nodes/<name>')
def v1_delete_node(name):
    _checked_name(name)
    if name == _config().local_node:
        raise ApiError(409, 'The node %r is this DTN itself; it is registered '
                       'from the service command line and cannot be deleted.'
                       % name)
    _store().delete_node(name)
    return '', 204


@bp_v1.get('/listing')
def v1_listing():
    args = flask.request.args
    unknown = set(args) - {'node', 'path'}
    if unknown or 'path' not in args or 'node' not in args:
        raise ApiError(400, 'A listing needs exactly the query parameters '
                       'node and path.')
    node = _node_for(_parse_location({'node': args['node'],
                                      'path': args['path']}, 'directory'))
    confined = _confine(node, args['path'], directory=True)
    return {'node': node['name'], 'path': confined.path,
            'url': _dir_url(node, confined.path),
            'entries': _list(node, confined)}


@bp_v1.post('/transfers')
def v1_start_transfer():
    cfg = _config()
    body = _json_body(allowed=('source', 'dest', 'mover', 'streams'),
                      required=('source', 'dest'))
    mover = body.get('mover', cfg.default_mover)
    if not isinstance(mover, str):
        raise ApiError(400, 'The field mover must be a string.')
    streams = _int_field(body, 'streams', cfg.default_streams, 1,
                         transfers.MAX_STREAMS)
    row = _start_transfer(body['source'], body['dest'], mover, streams)[0]
    response = flask.jsonify({'transfer': row})
    response.status_code = 202
    response.headers['Location'] = '/v1/transfers/%s' % row['id']
    return response


@bp_v1.get('/transfers')
def v1_transfers():
    return {'transfers': _store().list_transfers()}


def _checked_id(transfer_id):
    if not re.match(r'^[0-9a-f]{32}$', transfer_id):
        raise ApiError(400, 'The transfer id %r is not 32 hex digits.'
                       % transfer_id)
    return transfer_id


def _wait_arg(args):
    text = args.get('wait')
    if text is None:
        return 0.0
    try:
        wait = float(text)
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= constants.MAX_WAIT:   # also refuses nan and inf
        raise ApiError(400, 'The query parameter wait must be a number of '
                       'seconds from 0 to %g, not %r.'
                       % (constants.MAX_WAIT, text))
    return wait


@bp_v1.get('/transfers/<transfer_id>')
def v1_transfer(transfer_id):
    """The transfer; with ``?wait=<seconds>`` the answer waits until the
    transfer ends or that time has passed (a follower sees the end at
    once, with one request where polling would take many)."""
    unknown = set(flask.request.args) - {'wait'}
    if unknown:
        raise ApiError(400, 'Unknown query parameters: %s.'
                       % ', '.join(sorted(unknown)))
    wait = _wait_arg(flask.request.args)
    row = _store().get_transfer(_checked_id(transfer_id))
    if wait and row['state'] not in store_mod.FINAL_STATES:
        row = _manager().wait(transfer_id, timeout=wait)
    return {'transfer': row}


@bp_v1.delete('/transfers/<transfer_id>')
def v1_cancel_transfer(transfer_id):
    return {'transfer': _manager().cancel(_checked_id(transfer_id))}, 202


@bp_v1.post('/syncs')
def v1_start_sync():
    cfg = _config()
    body = _json_body(allowed=('source', 'dest', 'key', 'streams', 'raw'),
                      required=('source', 'dest', 'key'))
    streams = _int_field(body, 'streams', cfg.default_streams, 1,
                         transfers.MAX_STREAMS)
    raw = body.get('raw', False)
    if not isinstance(raw, bool):
        raise ApiError(400, 'The field raw must be true or false.')
    row = _start_sync(body['source'], body['dest'], body['key'], streams,
                      raw=raw)
    response = flask.jsonify({'sync': row})
    response.status_code = 202
    response.headers['Location'] = '/v1/transfers/%s' % row['id']
    return response


@bp_v1.delete('/syncs/<key>')
def v1_forget_sync(key):
    if not re.match(constants.SYNC_KEY_PATTERN, key):
        raise ApiError(400, 'The sync key %r is not valid.' % key)
    removed = _syncs().forget(key, _config().data_token)
    return {'key': key, 'removed': removed}


@bp_v1.get('/log')
def v1_log():
    args = flask.request.args
    unknown = set(args) - {'since', 'node', 'file', 'limit'}
    if unknown:
        raise ApiError(400, 'Unknown query parameters: %s (allowed: since, '
                       'node, file, limit).' % ', '.join(sorted(unknown)))
    since = args.get('since')
    if since is not None:
        try:
            since = datetime.datetime.fromisoformat(since)
        except ValueError:
            raise ApiError(400, 'The parameter since=%r is not an ISO 8601 '
                           'date or time.' % since)
    limit = args.get('limit', '1000')
    if not limit.isdigit() or not 1 <= int(limit) <= 10000:
        raise ApiError(400, 'The parameter limit must be 1 to 10000.')
    node = args.get('node')
    if node is not None:
        _checked_name(node)
    return {'log': _store().log(since=since, node=node, file=args.get('file'),
                                limit=int(limit))}


# -- the application -------------------------------------------------------

#: Our errors to HTTP statuses, most specific first (the one translation).
_STATUSES = (
    (store_mod.NotFound, 404),
    (store_mod.Conflict, 409),
    (syncs.SyncBusy, 409),
    (transfers.NotCancellable, 409),
    (transfers.UnknownMover, 400),
    (paths.PathOutside, 403),
    (paths.PathRefused, 400),
    (locations.LocationError, 400),
    (checks.BadInput, 400),
    (checks.NetworkRefused, 403),
    (base.MoverUnavailable, 503),
    (base.MoverError, 502),
)


def _error(code, message):
    response = flask.jsonify({'error': {'code': code, 'message': message}})
    response.status_code = code
    return response


def _status_of(exc, max_body):
    """(status, message) for any exception a request raised."""
    if isinstance(exc, ApiError):
        return exc.code, exc.message
    if isinstance(exc, http_exc.RequestEntityTooLarge):
        return 413, 'The request body is larger than %d bytes.' % max_body
    if isinstance(exc, http_exc.HTTPException):
        messages = {
            404: 'There is no resource at %s.' % flask.request.path,
            405: 'The method %s is not allowed on %s.' % (
                flask.request.method, flask.request.path),
        }
        return exc.code, messages.get(exc.code, exc.description)
    for cls, code in _STATUSES:
        if isinstance(exc, cls):
            return code, str(exc)
    return None


def create_app(store, manager, config=None):
    """The Flask WSGI application (without authentication)."""
    config = config or Config()
    app = flask.Flask('overcloud_migrate.dtn')
    app.config.update(DTN_SYNCS=syncs.SyncRegistry(
        config.sync_state_dir or syncs.default_state_dir()))
    app.config.update(DTN_STORE=store, DTN_TRANSFERS=manager,
                      DTN_CONFIG=config, MAX_CONTENT_LENGTH=config.max_body,
                      JSON_SORT_KEYS=False)
    app.url_map.strict_slashes = False
    app.register_blueprint(bp_seed)
    app.register_blueprint(bp_v1)

    @app.errorhandler(Exception)
    def _any_error(exc):
        known = _status_of(exc, config.max_body)
        if known is not None:
            return _error(*known)
        LOG.exception('unhandled error on %s %s', flask.request.method,
                      flask.request.path)
        return _error(500, 'The DTN service failed on this request (%s); see '
                      'its log.' % type(exc).__name__)

    return app
