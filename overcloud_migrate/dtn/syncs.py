"""Syncs: rounds of a delta copy of one file, run like transfers.

A sync round is a transfer row (listed, followed and cancelled like any
transfer) with a sync record beside it (key, round, size, bytes,
changed_bytes, repaired_bytes).  It runs through the builtin mover's data
path (:mod:`.movers.blockpipe.delta_sender` here,
:mod:`.movers.blockpipe.delta_receiver` on the destination's data port),
so it needs the data token and the destination node's data port.

Saved signatures live in the state directory of each DTN (``syncs/`` next
to the database by default), never in an export.
"""

import logging
import os
import threading

from overcloud_migrate.exceptions import OvercloudMigrateError

from overcloud_migrate.dtn import store as store_mod
from overcloud_migrate.dtn.movers import base

LOG = logging.getLogger(__name__)

MOVER_NAME = 'builtin'
STATE_SUBDIR = 'syncs'


class SyncBusy(OvercloudMigrateError):
    """A round of the same key is running already."""


def default_state_dir(database_url=None):
    """``syncs/`` beside the SQLite database (the service's state dir)."""
    url = database_url or store_mod.default_database_url()
    if url.startswith('sqlite:///'):
        path = url[len('sqlite:///'):]
        if path and path != ':memory:':
            return os.path.join(os.path.dirname(os.path.abspath(path)),
                                STATE_SUBDIR)
    return os.path.join(os.path.dirname(store_mod.default_database_url()[
        len('sqlite:///'):]), STATE_SUBDIR)


def state_dir_problem(directory, exports):
    """Why ``directory`` may not hold signatures (it is inside an export,
    so a user of the export could read or plant them), or None."""
    real = os.path.realpath(directory)
    for name, root in sorted(exports.items()):
        real_root = os.path.realpath(root)
        if real == real_root or real.startswith(real_root.rstrip('/') + '/'):
            return ('the sync state directory %s is inside the export %s '
                    '(%s): signatures are never kept in an export; start the '
                    'service with --sync-state-dir elsewhere'
                    % (directory, name, root))
    return None


def _blockpipe():
    try:
        from overcloud_migrate.dtn.movers.blockpipe import delta_sender
    except ImportError as exc:
        raise base.MoverUnavailable(
            'syncs need the cryptography package (pip install '
            '"cryptography>=3.1"): %s' % exc) from None
    return delta_sender


class SyncRunner(base.Mover):
    """One round, run by the :class:`~.transfers.TransferManager` like a
    mover (so progress, cancel and the log work as for transfers)."""

    name = MOVER_NAME
    capabilities = frozenset({'parallel-streams', 'sparse', 'delta'})

    def __init__(self, registry, store, key, state_dir, peer):
        self.registry = registry
        self.store = store
        self.key = key
        self.state_dir = state_dir
        self.peer = peer
        self.transfer_id = None

    def check(self):
        _blockpipe()

    def transfer(self, request, progress, cancel):
        try:
            options = request.options
            result = _blockpipe().sync(
                request.source_path, request.dest_host, request.dest_port,
                request.dest_path, options['token'], self.key,
                self.state_dir, streams=request.streams, progress=progress,
                cancel=cancel, source_root=options.get('source_root'),
                peer=self.peer)
            self.store.update_sync(
                self.transfer_id, round=result.round, bytes=result.bytes,
                changed_bytes=result.changed_bytes,
                repaired_bytes=result.repaired_bytes)
            LOG.info('sync %s round %d of %s: %d bytes sent, %d changed, %d '
                     'repaired, %.3f s', self.key, result.round,
                     request.source_path, result.bytes, result.changed_bytes,
                     result.repaired_bytes, result.seconds)
            return base.TransferResult(bytes=result.size,
                                       bytes_on_wire=result.bytes,
                                       seconds=result.seconds)
        finally:
            self.registry.release(self.key)


class SyncRegistry:
    """The keys with a round running on this DTN (one at a time each)."""

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self._lock = threading.Lock()
        self._running = set()

    def reserve(self, key):
        with self._lock:
            if key in self._running:
                raise SyncBusy('A round of the sync %s is already running on '
                               'this DTN; wait for it or cancel it.' % key)
            self._running.add(key)

    def release(self, key):
        with self._lock:
            self._running.discard(key)

    def start(self, manager, store, request, key, source_node, source_path,
              dest_node, dest_path, size, peer):
        """Start one round; the transfer row with its sync fields."""
        self.reserve(key)
        try:
            runner = SyncRunner(self, store, key, self.state_dir, peer)
            row = manager.start(MOVER_NAME, runner, request, source_node,
                                source_path, dest_node, dest_path,
                                bytes_total=size, before_start=lambda row: (
                                    store.create_sync(row['id'], key, size),
                                    setattr(runner, 'transfer_id',
                                            row['id'])))
        except BaseException:
            self.release(key)
            raise
        return store.get_transfer(row['id'])

    def forget(self, key, data_token):
        """Drop the saved signatures of ``key`` here and on every
        destination they name; the count of files removed."""
        from overcloud_migrate.dtn.movers.blockpipe import delta_state
        delta_state.check_key(key)
        self.reserve(key)
        try:
            removed = 0
            peers = {(meta['peer']['host'], meta['peer']['port'])
                     for meta in delta_state.metas(self.state_dir, key, 'src')
                     if isinstance(meta.get('peer'), dict)
                     and meta['peer'].get('host')}
            for host, port in sorted(peers):
                if not data_token:
                    raise base.MoverUnavailable(
                        'cannot ask %s:%s to forget sync %s: this DTN has no '
                        'data token' % (host, port, key))
                removed += _blockpipe().forget(host, port, data_token, key)
            removed += delta_state.forget(self.state_dir, key)
            return removed
        finally:
            self.release(key)
