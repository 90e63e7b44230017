"""inotify on a handoff directory: which items just became complete.

The watch directory gets one watch (a new item directory is created or
moved in); each item directory gets its own (its marker is closed after
writing or, as the source writes it, renamed into place).  An item that
was complete before its watch existed is found by looking once right
after adding the watch, so no marker is missed between the two.
"""

import logging
import os

import inotify_simple

from overcloud_migrate import handoff

LOG = logging.getLogger(__name__)
F = inotify_simple.flags
_ROOT = F.CREATE | F.MOVED_TO | F.ONLYDIR | F.DONT_FOLLOW
_ITEM = F.CLOSE_WRITE | F.MOVED_TO | F.ONLYDIR | F.DONT_FOLLOW


class Watcher:
    """Watches ``root``; :meth:`poll` returns names of complete items."""

    def __init__(self, root):
        self.root = root
        self.inotify = inotify_simple.INotify()
        self.root_wd = self.inotify.add_watch(root, _ROOT)
        self.items = {}     # wd -> item name
        self.wds = {}       # item name -> wd

    def _watch(self, name):
        """Watch an item directory; True when its marker is already
        there."""
        if name in self.wds or not handoff.valid_name(name) or \
                name in (handoff.DONE, handoff.FAILED):
            return False
        path = os.path.join(self.root, name)
        if os.path.islink(path) or not os.path.isdir(path):
            return False
        try:
            wd = self.inotify.add_watch(path, _ITEM)
        except OSError as exc:  # gone already, or not ours to read
            LOG.debug('Cannot watch %s: %s', path, exc)
            return False
        self.items[wd] = name
        self.wds[name] = wd
        return os.path.exists(os.path.join(path, handoff.MARKER))

    def scan(self):
        """Watch every item present now; the complete ones, sorted."""
        return [name for name in handoff.list_items(self.root)
                if self._watch(name)]

    def rescan(self):
        """Every complete item present now, watched or not (for
        directories whose writers inotify cannot see, such as NFS)."""
        self.scan()
        return [name for name in handoff.list_items(self.root)
                if os.path.exists(os.path.join(self.root, name,
                                               handoff.MARKER))]

    def forget(self, name):
        """Stop watching an item (before it is moved away)."""
        wd = self.wds.pop(name, None)
        if wd is not None:
            self.items.pop(wd, None)
            try:
                self.inotify.rm_watch(wd)
            except OSError:
                pass

    def poll(self, timeout_ms=1000):
        """Block up to ``timeout_ms`` for events; names of items whose
        marker arrived (in arrival order, no repeats)."""
        ready = []
        for event in self.inotify.read(timeout=timeout_ms):
            if event.mask & F.Q_OVERFLOW:
                # Events were lost: look at everything again.
                LOG.warning('inotify queue overflow in %s: rescanning',
                            self.root)
                ready += self.scan()
                continue
            if event.mask & F.IGNORED:
                name = self.items.pop(event.wd, None)
                if name is not None:
                    self.wds.pop(name, None)
                continue
            if event.wd == self.root_wd:
                if event.mask & F.ISDIR and self._watch(event.name):
                    ready.append(event.name)
                continue
            name = self.items.get(event.wd)
            if name is not None and event.name == handoff.MARKER:
                ready.append(name)
        seen = set()
        return [n for n in ready if not (n in seen or seen.add(n))]

    def close(self):
        self.inotify.close()
