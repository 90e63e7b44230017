"""Run transfers in background threads and keep their state in the store.

Movers are found by name in the stevedore namespace
``overcloud_migrate.dtn.movers``.  Each transfer runs in its own thread with
a cancel event; progress is written to the store at most twice a second.
"""

from importlib import metadata
import logging
import os
import posixpath
import re
import stat
import threading
import time

from stevedore import driver
from stevedore import exception as stevedore_exc
from stevedore import extension

from overcloud_migrate.exceptions import OvercloudMigrateError

from overcloud_migrate.dtn import constants
from overcloud_migrate.dtn import paths
from overcloud_migrate.dtn import store as store_mod
from overcloud_migrate.dtn.movers import base

LOG = logging.getLogger(__name__)

NAMESPACE = 'overcloud_migrate.dtn.movers'
DEFAULT_MOVER = 'gridftp'
MAX_STREAMS = constants.MAX_STREAMS
_PROGRESS_INTERVAL = 0.5


class UnknownMover(OvercloudMigrateError, LookupError):
    """No mover of that name is installed."""


class NotCancellable(OvercloudMigrateError, ValueError):
    """The transfer has already finished."""


def mover_names():
    """Names of the declared movers (also those that cannot load here)."""
    return sorted({ep.name for ep in metadata.entry_points(group=NAMESPACE)})


def load_mover(name):
    """An instance of the mover ``name``; raise UnknownMover/MoverUnavailable."""
    if name not in mover_names():
        raise UnknownMover('No mover named %r; valid movers: %s.'
                           % (name, ', '.join(mover_names()) or 'none'))
    failures = []

    def _failed(manager, entrypoint, exc):
        failures.append(exc)

    try:
        manager = driver.DriverManager(
            NAMESPACE, name=name, invoke_on_load=True,
            on_load_failure_callback=_failed)
    except stevedore_exc.NoMatches:
        raise base.MoverUnavailable(
            'The mover %r cannot be loaded on this DTN: %s' % (
                name, failures[0] if failures else 'no usable entry point'))
    return manager.driver


class MoverRegistry:
    """The movers a service may use: the installed ones, or (in tests)
    instances injected through ``DriverManager.make_test_instance``."""

    def __init__(self, test_movers=None):
        self._test = dict(test_movers or {})

    def names(self):
        return sorted(self._test) if self._test else mover_names()

    def load(self, name):
        if not self._test:
            return load_mover(name)
        if name not in self._test:
            raise UnknownMover('No mover named %r; valid movers: %s.'
                               % (name, ', '.join(self.names())))
        mover = self._test[name]
        ext = extension.Extension(name, None, type(mover), mover)
        return driver.DriverManager.make_test_instance(
            ext, namespace=NAMESPACE).driver


def build_request(mover, source_node, source, dest_node, dest, streams,
                  data_token=None):
    """The mover's TransferRequest for two confined paths and their nodes.

    Third-party movers (GridFTP) talk to both nodes' GridFTP servers; the
    others read the file here and send it to the destination's data port,
    with ``dest_path`` as ``EXPORT/path-in-export`` (the destination's
    receiver resolves it with :func:`receiver_resolver`) and the data port
    token in ``options['token']``.
    """
    options = {'source_scheme': source_node['gridftp_scheme'],
               'source_host': source_node['address'],
               'source_port': source_node['gridftp_port'],
               'dest_scheme': dest_node['gridftp_scheme'],
               'dest_root': dest.root, 'dest_export': dest.export}
    if 'third-party' in mover.capabilities:
        port = dest_node['gridftp_port']
    else:
        if not source_node['local']:
            raise base.MoverUnavailable(
                'The %r mover reads the file itself, so the source must be '
                'on this DTN (%s is another node).' % (mover.name,
                                                      source_node['name']))
        port = dest_node.get('data_port')
        if not port:
            raise base.MoverUnavailable(
                'The DTN node %r has no data port registered for the %r '
                'mover.' % (dest_node['name'], mover.name))
        if data_token:
            options['token'] = data_token
        options['source_root'] = source.root
        return base.TransferRequest(
            source_path=source.path, dest_host=dest_node['address'],
            dest_port=port, dest_path='%s/%s' % (dest.export, dest.relative),
            streams=streams, options=options)
    return base.TransferRequest(
        source_path=source.path, dest_host=dest_node['address'],
        dest_port=port, dest_path=dest.relative, streams=streams,
        options=options)


def receiver_resolver(exports):
    """``resolve_path`` for the builtin mover's receiver on this DTN.

    The sender names ``EXPORT/path-in-export``; the answer is the export
    root and the path inside it (no ".."), which the receiver opens one
    component at a time from the root, following no symlink.
    """
    def resolve(rel):
        name, _, inside = str(rel).partition('/')
        if name not in exports or not inside:
            raise paths.PathRefused('%r does not name a file in an export of '
                                    'this DTN (%s).' % (
                                        rel, ', '.join(sorted(exports))))
        confined = paths.confine(posixpath.join(exports[name], inside),
                                 {name: exports[name]}, local=True)
        if not confined.relative:
            raise paths.PathRefused('%r is an export root, not a file.' % rel)
        return confined.root, confined.relative
    return resolve


class StoreLeftovers(base.Leftovers):
    """:class:`~.movers.base.Leftovers` kept in the service's database."""

    def __init__(self, store, mover_name):
        self.store = store
        self.mover_name = mover_name

    def add(self, where):
        return self.store.add_leftover(self.mover_name, where)

    def remove(self, key):
        self.store.remove_leftover(key)


def clean_leftovers(store, registry):
    """Remove what earlier transfers left (at service start); the count of
    records still pending (their node unreachable: tried again next time)."""
    pending = 0
    for row in store.list_leftovers():
        try:
            mover = registry.load(row['mover'])
            gone = mover.remove_leftover(row['where'])
        except base.MoverError as exc:
            LOG.warning('cannot remove leftover %s: %s', row['where'], exc)
            gone = False
        if gone:
            store.remove_leftover(row['id'])
            LOG.info('removed a leftover of an earlier transfer: %s',
                     row['where'])
        else:
            pending += 1
    return pending


_GRIDFTP_PART = re.compile(r'^\..+\.part-[0-9a-f]{8}$')


def sweep_stale_parts(exports, max_age, now=None):
    """Remove temporary files older than ``max_age`` seconds from local
    exports: hidden GridFTP parts (``.NAME.part-XXXXXXXX``) and builtin
    ``NAME.part`` + ``NAME.part.state`` pairs whose journal stopped
    changing (a live transfer saves it every few seconds).  Symlinks are
    never followed.  Returns the paths removed."""
    now = time.time() if now is None else now
    removed = []
    for root in sorted(set(exports.values())):
        for directory, dirs, files in os.walk(root, followlinks=False):
            names = set(files)
            for name in files:
                path = os.path.join(directory, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < max_age:
                    continue
                victims = []
                if _GRIDFTP_PART.match(name):
                    victims = [path]
                elif name.endswith('.part.state') and name[:-6] in names:
                    victims = [path, path[:-6]]
                for victim in victims:
                    try:
                        os.unlink(victim)
                        removed.append(victim)
                    except OSError as exc:
                        LOG.warning('cannot remove %s: %s', victim, exc)
    for path in removed:
        LOG.info('removed a stale temporary file: %s', path)
    return removed


class _Progress:
    """Turns byte counts into store updates with average/instant MB/s."""

    def __init__(self, store, transfer_id):
        self.store = store
        self.transfer_id = transfer_id
        self.start = time.monotonic()
        self.last_time = self.start
        self.last_bytes = 0
        # movers may report from several threads: one writer at a time,
        # the others skip (the next report carries the newer count)
        self._lock = threading.Lock()

    def __call__(self, done):
        if not self._lock.acquire(blocking=False):
            return
        try:
            now = time.monotonic()
            if now - self.last_time < _PROGRESS_INTERVAL:
                return
            inst = (done - self.last_bytes) / 1e6 / (now - self.last_time)
            elapsed = now - self.start
            self.store.update_transfer(
                self.transfer_id, bytes_done=done, seconds=elapsed,
                avg_mb_per_s=done / 1e6 / elapsed if elapsed else 0.0,
                inst_mb_per_s=max(inst, 0.0))
            self.last_time, self.last_bytes = now, done
        finally:
            self._lock.release()


class TransferManager:
    """Starts, tracks and cancels transfers of one DTN service."""

    def __init__(self, store):
        self.store = store
        self._lock = threading.Lock()
        self._running = {}  # id -> (thread, cancel event)

    def start(self, mover_name, mover, request, source_node, source_path,
              dest_node, dest_path, bytes_total=None, before_start=None):
        """Create the row and run the mover in a thread; ``before_start(row)``
        (if given) runs in between."""
        if request.leftovers is None:
            request.leftovers = StoreLeftovers(self.store, mover_name)
        row = self.store.create_transfer(
            source_node=source_node, source_path=source_path,
            dest_node=dest_node, dest_path=dest_path, mover=mover_name,
            streams=request.streams, bytes_total=bytes_total)
        if before_start is not None:
            before_start(row)
        cancel = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(row['id'], mover, request, cancel),
            name='dtn-transfer-%s' % row['id'][:8], daemon=True)
        with self._lock:
            self._running[row['id']] = (thread, cancel)
        thread.start()
        return row

    def _run(self, transfer_id, mover, request, cancel):
        self.store.update_transfer(transfer_id, state=store_mod.RUNNING)
        try:
            result = mover.transfer(request, _Progress(self.store,
                                                       transfer_id), cancel)
        except base.TransferCancelled as exc:
            self.store.finish_transfer(transfer_id, store_mod.CANCELLED,
                                       error=str(exc))
        except base.MoverError as exc:
            LOG.warning('transfer %s failed: %s', transfer_id, exc)
            self.store.finish_transfer(transfer_id, store_mod.FAILED,
                                       error=str(exc))
        except Exception as exc:  # a mover bug must not leave "running"
            LOG.exception('transfer %s crashed', transfer_id)
            self.store.finish_transfer(
                transfer_id, store_mod.FAILED,
                error='The mover failed unexpectedly: %s' % exc)
        else:
            if cancel.is_set():
                # finished in the same instant it was cancelled: it is
                # complete, so report it as done
                LOG.info('transfer %s completed while being cancelled',
                         transfer_id)
            self.store.finish_transfer(
                transfer_id, store_mod.DONE,
                log={'bytes': result.bytes, 'seconds': result.seconds,
                     'mb_per_s': result.mb_per_s})
        finally:
            with self._lock:
                self._running.pop(transfer_id, None)

    def cancel(self, transfer_id):
        row = self.store.get_transfer(transfer_id)  # raises NotFound
        with self._lock:
            entry = self._running.get(transfer_id)
        if entry is None or row['state'] in store_mod.FINAL_STATES:
            raise NotCancellable('The transfer %s has already finished (%s).'
                                 % (transfer_id, row['state']))
        entry[1].set()
        return row

    def wait(self, transfer_id, timeout=None):
        """Block until the transfer's thread ends; return its row."""
        with self._lock:
            entry = self._running.get(transfer_id)
        if entry is not None:
            entry[0].join(timeout)
        return self.store.get_transfer(transfer_id)

    def shutdown(self, timeout=10):
        """Cancel what still runs (service stop)."""
        with self._lock:
            entries = list(self._running.values())
        for _, cancel in entries:
            cancel.set()
        for thread, _ in entries:
            thread.join(timeout)
