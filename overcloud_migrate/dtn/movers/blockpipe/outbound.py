"""The sender's helpers: an authenticated connection to a receiver, the
data port probe and the source's sha256 computed in the background."""

import hashlib
import os
import socket
import threading

from overcloud_migrate.dtn.movers import base
from overcloud_migrate.dtn.movers.blockpipe import session
from overcloud_migrate.dtn.movers.blockpipe.wire import (
    ProtocolError,
    _as_key,
    _describe_oserror,
    _keepalive,
    _recv_exact,
    _set_timeouts)


def _connect(host, port, key, timeout):
    """An authenticated :class:`~.session.Channel` to a :class:`Receiver`."""
    where = '%s:%s' % (host, port)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise base.MoverUnavailable('cannot reach the data port %s: %s'
                                    % (where, _describe_oserror(exc))) from None
    try:
        _set_timeouts(sock, timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _keepalive(sock)
        return session.client_handshake(sock, key, where)
    except session.AuthFailed:
        sock.close()
        raise
    except ProtocolError as exc:
        sock.close()
        raise base.MoverUnavailable(str(exc)) from None
    except (OSError, EOFError) as exc:
        sock.close()
        raise base.MoverError('handshake with %s failed: %s' % (where, exc)) \
            from None
    except BaseException:
        sock.close()
        raise


def probe(host, port, token=None, timeout=10.0):
    """Check that a data port answers (and accepts ``token`` if given)."""
    if token is None:
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock:
                banner = _recv_exact(sock, len(session.MAGIC))
        except (OSError, EOFError) as exc:
            raise base.MoverUnavailable('cannot reach the data port %s:%s: %s'
                                        % (host, port, exc)) from None
        if banner != session.MAGIC:
            raise base.MoverUnavailable('%s:%s is not a builtin mover data '
                                        'port' % (host, port))
        return
    chan = _connect(host, port, _as_key(token), timeout)
    try:
        chan.send_msg({'op': 'ping'})
        reply = chan.recv_msg()
    except (OSError, EOFError) as exc:
        raise base.MoverUnavailable('data port %s:%s: %s'
                                    % (host, port, exc)) from None
    finally:
        chan.sock.close()
    if not reply or not reply.get('ok'):
        raise base.MoverUnavailable('data port %s:%s answered %r'
                                    % (host, port, reply))


class _BackgroundSha256:
    """The source's sha256, computed while the chunks travel."""

    def __init__(self, fd, path, size):
        self._fd = os.dup(fd)     # the file the sender opened, not the name
        self._path = path
        self._size = size
        self._stop = threading.Event()
        self._digest = None
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='blockpipe-sha256')
        self._thread.start()

    def _run(self):
        try:
            digest = hashlib.sha256()
            view = memoryview(bytearray(4 * 1024 * 1024))
            offset = 0
            while not self._stop.is_set() and offset < self._size:
                n = os.preadv(self._fd, [view], offset)
                if not n:
                    break
                digest.update(view[:n])
                offset += n
            self._digest = digest.hexdigest()
        except OSError as exc:
            self._error = exc
        finally:
            os.close(self._fd)

    def stop(self):
        self._stop.set()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise base.MoverError('cannot hash %s: %s' % (
                self._path, _describe_oserror(self._error)))
        return self._digest
