"""A real DTN service on an ephemeral loopback port, for the unit tests.

The service is the real WSGI application behind the real threaded server
and the real shared-token middleware.  Only the mover is a test double
(injected with stevedore's ``make_test_instance``): it copies on the local
file system, so transfers, cancel and failures run without GridFTP (which
tests/functional/test_dtn_gridftp.py covers for real).
"""

import os
import posixpath
import threading
import time
import uuid

import pytest
import requests

from overcloud_migrate.dtn import api
from overcloud_migrate.dtn import auth
from overcloud_migrate.dtn import service
from overcloud_migrate.dtn import store as store_mod
from overcloud_migrate.dtn import transfers
from overcloud_migrate.dtn.movers import base

TOKEN = 'unit-test-token-0123456789abcdef'


class LocalCopyMover(base.Mover):
    """Copies within this host in 64 KiB chunks, honouring cancel."""

    name = 'localcopy'
    capabilities = frozenset({'third-party'})
    chunk = 64 * 1024

    def __init__(self, delay=0.0):
        self.delay = delay

    def check(self):
        pass

    def transfer(self, request, progress, cancel):
        final = posixpath.join(request.options['dest_root'],
                               request.dest_path)
        temp = posixpath.join(posixpath.dirname(final), '.%s.part-%s' % (
            posixpath.basename(final), uuid.uuid4().hex[:8]))
        start = time.monotonic()
        done = 0
        try:
            with open(request.source_path, 'rb') as src, \
                    open(temp, 'xb') as dst:
                while True:
                    if cancel.is_set():
                        raise base.TransferCancelled(
                            'The transfer of %s was cancelled.'
                            % request.source_path)
                    block = src.read(self.chunk)
                    if not block:
                        break
                    dst.write(block)
                    done += len(block)
                    progress(done)
                    if self.delay:
                        time.sleep(self.delay)
            os.replace(temp, final)
        except OSError as exc:
            raise base.MoverError('Copy to %s failed: %s' % (final, exc))
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
        return base.TransferResult(bytes=done, bytes_on_wire=done,
                                   seconds=time.monotonic() - start)


class UnavailableMover(LocalCopyMover):
    name = 'unavailable'

    def check(self):
        raise base.MoverUnavailable('The unavailable mover has no binary.')


class DTN:
    """What the tests need to know about the running service."""

    def __init__(self, url, token, store, root, export_a, export_b, outside):
        self.url = url
        self.token = token
        self.store = store
        self.root = root
        self.export_a = export_a
        self.export_b = export_b
        self.outside = outside
        self.session = requests.Session()
        self.session.headers['X-Auth-Token'] = token

    def call(self, method, path, **kwargs):
        kwargs.setdefault('timeout', 10)
        return self.session.request(method, self.url + path, **kwargs)

    def wait(self, transfer_id, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = self.call('GET', '/v1/transfers/' + transfer_id).json()
            if row['transfer']['state'] in store_mod.FINAL_STATES:
                return row['transfer']
            time.sleep(0.05)
        raise AssertionError('transfer %s did not end' % transfer_id)


def serve(application):
    """Serve a WSGI app on 127.0.0.1:<free port> in a thread."""
    from wsgiref import simple_server
    server = simple_server.make_server(
        '127.0.0.1', 0, application,
        server_class=service.ThreadingWSGIServer,
        handler_class=service._Handler)
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def dtn_tree(tmp_path):
    export_a = tmp_path / 'export-a'
    export_b = tmp_path / 'export-b'
    outside = tmp_path / 'outside'
    for path in (export_a, export_b, outside):
        path.mkdir()
    (export_a / 'small.dat').write_bytes(os.urandom(300 * 1024))
    (export_a / 'sub').mkdir()
    (outside / 'secret.txt').write_text('do not copy me\n')
    return tmp_path, export_a, export_b, outside


@pytest.fixture
def dtn(dtn_tree):
    """The DTN service 'a' (local exports) knowing a second node 'b'."""
    root, export_a, export_b, outside = dtn_tree
    store = store_mod.Store('sqlite:///%s' % (root / 'dtn.sqlite'))
    store.upsert_local_node('a', '127.0.0.1', 1, 'ftp', None,
                            {'data': str(export_a)})
    store.add_node('b', '127.0.0.1', gridftp_port=2, exports={
        'data': str(export_b)})
    manager = transfers.TransferManager(store)
    movers = transfers.MoverRegistry({
        'localcopy': LocalCopyMover(),
        'slowcopy': LocalCopyMover(delay=0.05),
        'unavailable': UnavailableMover()})
    app = api.create_app(store, manager, api.Config(
        local_node='a', default_mover='localcopy', movers=movers,
        listing_timeout=10))
    server, thread = serve(auth.SharedTokenAuth(app, TOKEN))
    url = 'http://127.0.0.1:%d' % server.server_address[1]
    yield DTN(url, TOKEN, store, root, export_a, export_b, outside)
    manager.shutdown()
    server.shutdown()
    server.server_close()
    thread.join(5)
    store.close()
