"""The watcher and the Receiver's loop on a real directory, real inotify.

No cloud: the processor here reads each item with the real reader and
moves it to done/ or failed/ as the real one does.
"""

import os
import threading

import pytest

from overcloud_migrate import handoff
from overcloud_migrate.receiver import service
from overcloud_migrate.receiver import watcher as watcher_mod
from tests.unit import test_handoff


def poll_until(watcher, count):
    """Poll until ``count`` names came (each poll blocks on inotify)."""
    names = []
    for _ in range(50):
        names += watcher.poll(200)
        if len(names) >= count:
            break
    return names


def test_a_marker_renamed_into_place_triggers_its_item(tmp_path):
    watcher = watcher_mod.Watcher(str(tmp_path))
    try:
        assert watcher.scan() == []
        test_handoff.write_item(tmp_path, marker=False)
        assert watcher.poll(100) == []       # the item dir, no marker yet
        test_handoff.write_item(tmp_path, name='m1-v2')   # with a marker
        names = poll_until(watcher, 1)
        assert names == ['m1-v2']
        # now the first item's marker, written in place (close_write)
        (tmp_path / 'm1-v1' / handoff.MARKER).write_bytes(
            (tmp_path / 'm1-v2' / handoff.MARKER).read_bytes())
        assert poll_until(watcher, 1) == ['m1-v1']
    finally:
        watcher.close()


def test_an_item_moved_in_whole_is_seen(tmp_path):
    root = tmp_path / 'root'
    root.mkdir()
    test_handoff.write_item(tmp_path, name='m1-v3')
    watcher = watcher_mod.Watcher(str(root))
    try:
        os.rename(tmp_path / 'm1-v3', root / 'm1-v3')
        assert poll_until(watcher, 1) == ['m1-v3']
    finally:
        watcher.close()


def test_scan_finds_complete_items_and_skips_links_and_odd_names(tmp_path):
    test_handoff.write_item(tmp_path, name='m1-a')
    test_handoff.write_item(tmp_path, name='m1-b', marker=False)
    os.symlink(tmp_path / 'm1-a', tmp_path / 'm1-link')
    (tmp_path / '.hidden').mkdir()
    (tmp_path / 'done').mkdir()
    watcher = watcher_mod.Watcher(str(tmp_path))
    try:
        assert watcher.scan() == ['m1-a']
    finally:
        watcher.close()


class LocalProcessor:
    """Reads items with the real reader; done/failed like the real one."""

    def __init__(self, root, gate=None):
        self.root = root
        self.gate = gate
        self.seen = []
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def process(self, name):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if self.gate is not None:
                self.gate.wait(10)
            try:
                handoff.read_item(self.root, name)
                state, reason = 'done', None
            except handoff.NotReady:
                return None
            except handoff.ItemError as exc:
                state, reason = 'failed', str(exc)
            handoff.write_status(self.root, name, {'state': state,
                                                   'reason': reason})
            handoff.move(self.root, name, handoff.DONE if state == 'done'
                         else handoff.FAILED)
            self.seen.append(name)
            return state
        finally:
            with self.lock:
                self.running -= 1


def test_once_processes_what_is_there_two_at_a_time(tmp_path):
    for n in range(4):
        test_handoff.write_item(tmp_path, name='m1-v%d' % n)
    (tmp_path / 'm1-v3' / 'plan.json').write_text('{}')    # damaged
    test_handoff.write_item(tmp_path, name='m1-v9', marker=False)
    gate = threading.Event()
    processor = LocalProcessor(str(tmp_path), gate)
    receiver = service.Receiver(str(tmp_path), processor, workers=2,
                                once=True)
    threading.Timer(0.5, gate.set).start()
    results = receiver.run()
    assert results == {'m1-v0': 'done', 'm1-v1': 'done', 'm1-v2': 'done',
                       'm1-v3': 'failed'}
    assert processor.most == 2
    assert handoff.list_items(str(tmp_path)) == ['m1-v9']
    assert handoff.list_items(str(tmp_path), 'failed') == ['m1-v3']
    status = handoff.read_status(str(tmp_path / 'failed'), 'm1-v3')
    assert 'truncated or damaged' in status['reason']


def test_watching_picks_up_new_items_and_stops_cleanly(tmp_path):
    processor = LocalProcessor(str(tmp_path))
    receiver = service.Receiver(str(tmp_path), processor, workers=2)
    thread = threading.Thread(target=receiver.run)
    thread.start()
    try:
        test_handoff.write_item(tmp_path, name='m2-v1')
        for _ in range(100):
            if processor.seen:
                break
            thread.join(0.1)
        assert processor.seen == ['m2-v1']
        assert handoff.list_items(str(tmp_path), 'done') == ['m2-v1']
    finally:
        receiver.stop()
        thread.join(10)
    assert not thread.is_alive()


def test_one_receiver_per_directory(tmp_path):
    processor = LocalProcessor(str(tmp_path))
    first = service.Receiver(str(tmp_path), processor)
    thread = threading.Thread(target=first.run)
    thread.start()
    try:
        for _ in range(100):
            if first._lock_fd is not None:
                break
            thread.join(0.05)
        # lockf locks are per process: a second process must be refused
        pid = os.fork()
        if pid == 0:
            try:
                service.Receiver(str(tmp_path), processor)._take_lock()
                os._exit(0)
            except service.ReceiverError:
                os._exit(3)
            except BaseException:
                os._exit(4)
        _, code = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(code) == 3
    finally:
        first.stop()
        thread.join(10)


def test_a_missing_watch_directory_is_an_error(tmp_path):
    with pytest.raises(service.ReceiverError):
        service.Receiver(str(tmp_path / 'nope'), None).run()


def test_rescan_finds_items_that_inotify_did_not_report(tmp_path):
    watcher = watcher_mod.Watcher(str(tmp_path))
    try:
        test_handoff.write_item(tmp_path, name='m3-v1')
        poll_until(watcher, 1)
        # already watched and reported once: a rescan still lists it, as
        # it would an item another host wrote over NFS
        assert watcher.rescan() == ['m3-v1']
    finally:
        watcher.close()


def test_a_failed_item_moved_back_is_taken_again(tmp_path):
    test_handoff.write_item(tmp_path, name='m4-v1')
    (tmp_path / 'm4-v1' / 'plan.json').write_text('{}')
    processor = LocalProcessor(str(tmp_path))
    receiver = service.Receiver(str(tmp_path), processor, workers=1)
    thread = threading.Thread(target=receiver.run)
    thread.start()
    try:
        for _ in range(100):
            if processor.seen:
                break
            thread.join(0.1)
        assert handoff.list_items(str(tmp_path), 'failed') == ['m4-v1']
        # fixed by the operator, then moved back
        fixed = tmp_path / 'failed' / 'm4-v1'
        test_handoff.write_item(tmp_path / 'failed', name='m4-fixed')
        (fixed / 'plan.json').write_bytes(
            (tmp_path / 'failed' / 'm4-fixed' / 'plan.json').read_bytes())
        os.rename(fixed, tmp_path / 'm4-v1')
        for _ in range(100):
            if len(processor.seen) == 2:
                break
            thread.join(0.1)
        assert processor.seen == ['m4-v1', 'm4-v1']
        assert handoff.list_items(str(tmp_path), 'done') == ['m4-v1']
    finally:
        receiver.stop()
        thread.join(10)
