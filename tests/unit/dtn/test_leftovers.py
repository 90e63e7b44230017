"""What failed, cancelled or killed transfers leave (issue 15, section 2)."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from overcloud_migrate.dtn import store as store_mod
from overcloud_migrate.dtn import transfers
from overcloud_migrate.dtn.movers import base
from overcloud_migrate.dtn.movers import gridftp


def _free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def store(tmp_path):
    store = store_mod.Store('sqlite:///%s' % (tmp_path / 'l.sqlite'))
    yield store
    store.close()


def test_part_on_an_unreachable_destination_is_recorded(store, tmp_path):
    """globus-url-copy fails and the destination's server is down: the
    hidden part cannot be deleted now, so it is recorded for later."""
    mover = gridftp.GridftpMover(binary='/bin/false')
    request = base.TransferRequest(
        source_path='/src/f', dest_host='127.0.0.1', dest_port=_free_port(),
        dest_path='f', streams=1,
        options={'source_scheme': 'gsiftp', 'dest_scheme': 'ftp',
                 'dest_root': '/dst', 'restart_retries': 0})
    request.leftovers = transfers.StoreLeftovers(store, 'gridftp')
    with pytest.raises(base.MoverError):
        mover.transfer(request, lambda n: None, threading.Event())
    rows = store.list_leftovers()
    assert len(rows) == 1
    assert rows[0]['mover'] == 'gridftp'
    assert rows[0]['where']['path'].startswith('/dst/.f.part-')


class _Remover(base.Mover):
    name = 'remover'

    def __init__(self, reachable):
        self.reachable = reachable
        self.removed = []

    def check(self):
        pass

    def transfer(self, request, progress, cancel):
        raise NotImplementedError

    def remove_leftover(self, where):
        if self.reachable:
            self.removed.append(where)
        return self.reachable


def test_leftovers_removed_at_start_when_reachable(store):
    store.add_leftover('remover', {'host': 'h', 'port': 1, 'path': '/a'})
    down = _Remover(reachable=False)
    assert transfers.clean_leftovers(
        store, transfers.MoverRegistry({'remover': down})) == 1
    assert len(store.list_leftovers()) == 1
    up = _Remover(reachable=True)
    assert transfers.clean_leftovers(
        store, transfers.MoverRegistry({'remover': up})) == 0
    assert up.removed == [{'host': 'h', 'port': 1, 'path': '/a'}]
    assert store.list_leftovers() == []


def test_stale_parts_swept_from_local_exports(tmp_path):
    export = tmp_path / 'e'
    (export / 'sub').mkdir(parents=True)
    old = time.time() - 3 * 24 * 3600
    stale = [export / '.vm.img.part-0123abcd', export / 'sub' / 'b.img.part',
             export / 'sub' / 'b.img.part.state']
    kept = [export / '.new.img.part-0123abcd', export / 'vm.img',
            export / 'c.img.part', export / 'c.img.part.state']
    for path in stale + kept:
        path.write_bytes(b'x')
    for path in stale + [export / 'vm.img']:
        os.utime(path, (old, old))
    removed = transfers.sweep_stale_parts({'e': str(export)}, 24 * 3600)
    assert sorted(removed) == sorted(str(p) for p in stale)
    assert all(path.exists() for path in kept)


def test_globus_url_copy_dies_with_the_service(tmp_path):
    """kill -9 of the service must not leave its globus-url-copy running."""
    pid_file = tmp_path / 'child.pid'
    fake = tmp_path / 'globus-url-copy'
    fake.write_text('#!/bin/sh\necho $$ > %s\nexec sleep 60\n' % pid_file)
    fake.chmod(0o755)
    script = textwrap.dedent('''
        import threading, sys
        from overcloud_migrate.dtn.movers import base, gridftp
        mover = gridftp.GridftpMover(binary=%r)
        request = base.TransferRequest(
            source_path='/s/f', dest_host='127.0.0.1', dest_port=1,
            dest_path='f', options={'source_scheme': 'gsiftp',
                                    'dest_scheme': 'gsiftp'})
        mover.transfer(request, lambda n: None, threading.Event())
    ''' % str(fake))
    service = subprocess.Popen([sys.executable, '-c', script],
                               cwd=os.getcwd())
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline, 'the mover never started'
            time.sleep(0.05)
        child = int(pid_file.read_text())
        os.kill(service.pid, signal.SIGKILL)
        service.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(child, signal.SIGKILL)
            pytest.fail('globus-url-copy outlived the killed service')
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
