"""A real HTTP image service on a loopback port, for the transport tests.

Not a fake Glance: a small ``http.server`` that implements only what the
drivers use, ``GET /images/<id>/file`` (``Range: bytes=N-`` honoured or
ignored, on demand) and ``PUT /images/<id>/file`` (chunked or sized
bodies). The drivers reach it through a keystoneauth ``Adapter`` over a
``Session`` with ``endpoint_override``: the same calls, status handling
and streaming as with openstacksdk's image proxy.
"""

import hashlib
import http.server
import os
import re
import subprocess
import tempfile
import threading
import time
import types

from keystoneauth1 import adapter
from keystoneauth1 import session
import pytest

from overcloud_migrate.transports import base

_PATH = re.compile(r'^/images/([^/]+)/file$')
_RANGE = re.compile(r'^bytes=(\d+)-$')


class ImageServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(('127.0.0.1', 0), _Handler)
        self.images = {}
        self.uploads = {}
        self.honour_range = True
        self.cut_after = None      # serve only this many body bytes, once
        self.put_status = None     # answer PUTs with this status
        self.served = 0            # body bytes sent by GETs
        self.requests = []         # (method, image id, Range header)
        self.aborted_puts = 0
        self.put_framing = []      # 'chunked' or 'sized', one per PUT
        self.lock = threading.Lock()

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.server_address[1]

    def wait_for_aborted_puts(self, count, timeout=10):
        """The handler thread sees the cut body after the client gave up."""
        deadline = time.monotonic() + timeout
        while self.aborted_puts < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.aborted_puts

    def reset_counts(self):
        with self.lock:
            self.served = 0
            self.requests.clear()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def _image_id(self):
        match = _PATH.match(self.path)
        if not match:
            self._reply(404, b'no such path')
            return None
        return match.group(1)

    def _reply(self, status, body=b''):
        self.send_response(status)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        image_id = self._image_id()
        if image_id is None:
            return
        server = self.server
        wanted = self.headers.get('Range')
        with server.lock:
            server.requests.append(('GET', image_id, wanted))
        data = server.images.get(image_id)
        if data is None:
            return self._reply(404, b'image not found')
        start = 0
        match = _RANGE.match(wanted or '')
        if match and server.honour_range:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header('Content-Range', 'bytes */%d' % len(data))
                self.send_header('Content-Length', '0')
                self.end_headers()
                return
            self.send_response(206)
            self.send_header('Content-Range', 'bytes %d-%d/%d'
                             % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header('Content-Type', 'application/octet-stream')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        limit, server.cut_after = server.cut_after, None
        if limit is not None:
            body = body[:limit]
        for pos in range(0, len(body), 65536):
            block = body[pos:pos + 65536]
            self.wfile.write(block)
            with server.lock:
                server.served += len(block)
        if limit is not None:
            self.close_connection = True

    def do_PUT(self):
        image_id = self._image_id()
        if image_id is None:
            return
        server = self.server
        with server.lock:
            server.requests.append(('PUT', image_id, None))
            chunked = 'chunked' in self.headers.get('Transfer-Encoding', '')
            server.put_framing.append('chunked' if chunked else 'sized')
        try:
            if chunked:
                body = self._read_chunked()
            else:
                length = int(self.headers.get('Content-Length', 0))
                body = self.rfile.read(length)
                if len(body) != length:
                    raise EOFError
        except (EOFError, ValueError, ConnectionError):
            with server.lock:
                server.aborted_puts += 1
            self.close_connection = True
            return
        if server.put_status:
            return self._reply(server.put_status, b'Request Entity Too Large')
        server.uploads[image_id] = body
        self._reply(204)

    def _read_chunked(self):
        parts = []
        while True:
            line = self.rfile.readline()
            if not line.endswith(b'\r\n'):
                raise EOFError
            size = int(line.split(b';')[0], 16)
            if size == 0:
                while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                    pass
                return b''.join(parts)
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.read(2) != b'\r\n':
                raise EOFError
            parts.append(chunk)


@pytest.fixture
def image_server():
    server = ImageServer()
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def connection(image_server):
    """What the drivers need of an openstacksdk Connection: ``.image``."""
    sess = session.Session(auth=None)
    return types.SimpleNamespace(
        image=adapter.Adapter(sess, endpoint_override=image_server.url))


@pytest.fixture
def image(image_server, connection):
    """A 3.5 MiB source image (several 1 MiB chunks) and an empty
    destination image, as ImageRefs."""
    data = os.urandom(3 * 1024 * 1024 + 512 * 1024)
    image_server.images['src-0001'] = data
    source = base.ImageRef(connection, 'src-0001', len(data), 'sha512',
                           hashlib.sha512(data).hexdigest(), 'web1-snap')
    dest = base.ImageRef(connection, 'dst-0001')
    return types.SimpleNamespace(data=data, source=source, dest=dest,
                                 sha512=hashlib.sha512(data).hexdigest())


@pytest.fixture(autouse=True)
def no_fault(monkeypatch):
    monkeypatch.delenv(base.FAULT_ENV, raising=False)
    monkeypatch.setattr(base.HashingReader, '_corrupted', False)


@pytest.fixture
def unwritable_dir():
    """A directory this process cannot create files in, even as root
    (``chattr +i`` on the local ext4 /tmp); skipped where impossible."""
    path = tempfile.mkdtemp(prefix='om-unwritable-')
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        yield path
        os.chmod(path, 0o755)
        os.rmdir(path)
        return
    made = subprocess.run(['chattr', '+i', path], capture_output=True)
    if made.returncode != 0:
        os.rmdir(path)
        pytest.skip('cannot make a directory unwritable for root here: %s'
                    % made.stderr.decode().strip())
    try:
        yield path
    finally:
        subprocess.run(['chattr', '-i', path], check=True)
        os.rmdir(path)
