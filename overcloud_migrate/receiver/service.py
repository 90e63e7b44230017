"""The Receiver's main loop: watch a directory, process items, stop cleanly.

At start it takes a lock on ``DIR/.receiver.lock`` (one Receiver per
directory), processes the complete items already there (including those
a killed Receiver had claimed), then waits on inotify for markers.  At
most ``workers`` items are processed at once.  :meth:`Receiver.stop`
(SIGTERM/SIGINT in the command) stops taking items and lets the ones in
flight finish; items cut short by a harder stop are resumed at the next
start.
"""

import concurrent.futures
import errno
import fcntl
import logging
import os
import threading
import time

from overcloud_migrate import exceptions
from overcloud_migrate.plan import handoff
from overcloud_migrate.receiver import watcher as watcher_mod

LOG = logging.getLogger(__name__)
LOCK_FILE = '.receiver.lock'


class ReceiverError(exceptions.OvercloudMigrateError):
    """The Receiver cannot start; the message says why."""


class Receiver:

    def __init__(self, root, processor, workers=2, once=False,
                 rescan_interval=0):
        self.root = os.path.abspath(root)
        self.processor = processor
        self.workers = max(1, int(workers))
        self.once = once
        #: seconds between full scans besides inotify (0: never); for a
        #: directory written by another host (NFS), which inotify misses
        self.rescan_interval = rescan_interval
        self.stopping = threading.Event()
        self.in_flight = set()
        self.results = {}
        self._lock = threading.Lock()
        self._lock_fd = None

    def stop(self):
        """Take no new item; in-flight ones finish."""
        self.stopping.set()

    def _take_lock(self):
        if not os.path.isdir(self.root):
            raise ReceiverError('The watch directory %s does not exist.'
                                % self.root)
        fd = os.open(os.path.join(self.root, LOCK_FILE),
                     os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                raise ReceiverError('Another receiver is already watching '
                                    '%s.' % self.root)
            raise
        self._lock_fd = fd
        for where in (handoff.DONE, handoff.FAILED):
            os.makedirs(os.path.join(self.root, where), exist_ok=True)

    def run(self):
        """Process items until :meth:`stop` (or, with ``once``, until the
        items present at start are done). Returns {item: state}."""
        self._take_lock()
        watcher = watcher_mod.Watcher(self.root)
        pool = concurrent.futures.ThreadPoolExecutor(
            self.workers, thread_name_prefix='receiver')
        try:
            ready = watcher.scan()
            LOG.info('Watching %s with %d workers; %d complete item(s) '
                     'waiting', self.root, self.workers, len(ready))
            futures = [self._submit(pool, watcher, name) for name in ready]
            if self.once:
                concurrent.futures.wait([f for f in futures if f])
                return dict(self.results)
            last_scan = time.monotonic()
            while not self.stopping.is_set():
                names = watcher.poll(500)
                if self.rescan_interval and time.monotonic() - last_scan \
                        >= self.rescan_interval:
                    last_scan = time.monotonic()
                    names += [n for n in watcher.rescan() if n not in names]
                for name in names:
                    if self.stopping.is_set():
                        break
                    self._submit(pool, watcher, name)
            LOG.info('Stopping: waiting for %d item(s) in flight',
                     len(self.in_flight))
        finally:
            pool.shutdown(wait=True)
            watcher.close()
            os.close(self._lock_fd)
        LOG.info('Stopped')
        return dict(self.results)

    def _submit(self, pool, watcher, name):
        with self._lock:
            if name in self.in_flight:
                return None
            self.in_flight.add(name)

        def work():
            try:
                state = self.processor.process(name)
                if state:
                    watcher.forget(name)
                    self.results[name] = state
            except Exception:  # e.g. the directory went read-only
                LOG.exception('%s: left as it is; it is taken again at the '
                              'next start', name)
            finally:
                with self._lock:
                    self.in_flight.discard(name)

        return pool.submit(work)
