"""The builtin mover's wire format: constants, messages, handshake, sockets.

Shared by :mod:`.receiver` and :mod:`.sender`; see the package docstring
for the format itself.
"""

import base64
import dataclasses
import errno
import hashlib
import hmac
import json
import socket
import struct
import typing
import zlib

from overcloud_migrate.dtn import constants
from overcloud_migrate.dtn.movers import base

DEFAULT_PORT = 22642
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
MIN_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 64 * 1024 * 1024
ZERO_BLOCK = 128 * 1024
DEFAULT_TIMEOUT = 60.0
#: chunks sent on one connection before an acknowledgement is awaited
WINDOW = 2
#: most connections one transfer may attach on the receiver
MAX_STREAMS = constants.MAX_STREAMS
#: most connections (authenticated or not) a receiver serves at once
MAX_CONNECTIONS = 256
STATE_FLUSH_SECONDS = 2.0

MAGIC = b'OCMBP1\n'
NONCE_LEN = 32
MAC_LEN = 32
DIGEST_LEN = 16
_MSG = struct.Struct('!I')
_CHUNK = struct.Struct('!QI')
_SEG = struct.Struct('!QQ')
_ZEROS = bytes(ZERO_BLOCK)
_ZERO_PROBE = bytes(64)
_MAX_MSG = 16 * 1024 * 1024
_F_SETPIPE_SZ = 1031
_F_GETPIPE_SZ = 1032
_PIPE_SIZE = 1024 * 1024
_SCRATCH_SIZE = 256 * 1024
#: the sender reads (to hash and send) through a buffer this big
_READ_SIZE = 1024 * 1024
#: the receiver hashes each piece of this size as soon as it has arrived
_RECV_PIECE = 1024 * 1024


class ProtocolError(base.MoverError):
    """The peer broke the wire protocol."""


class _LinkBroken(Exception):
    """One data connection went down; the sender reconnects."""


@dataclasses.dataclass
class Faults:
    """Faults the sender injects, for tests only.

    ``corrupt_chunks``: chunk indices whose first data byte is flipped on the
    wire (once each).  ``break_chunks``: chunk indices at which the stream
    sends half the chunk, then closes its side of the connection (once each).
    ``stop_after_acks``: after this many good acknowledgements the sender
    drops every connection and gives up, as if the link went away.
    """
    corrupt_chunks: typing.AbstractSet[int] = frozenset()
    break_chunks: typing.AbstractSet[int] = frozenset()
    stop_after_acks: typing.Optional[int] = None


# -- small wire helpers -------------------------------------------------------


def _as_key(token):
    if isinstance(token, str):
        token = token.encode('utf-8')
    if not token:
        raise ValueError('the builtin mover needs a non-empty shared token')
    return bytes(token)


def _mac(key, label, server_nonce, client_nonce):
    return hmac.new(key, label + server_nonce + client_nonce,
                    hashlib.sha256).digest()


def _recv_into(sock, view):
    """Fill ``view`` from ``sock``; EOFError if the peer closes first.

    MSG_WAITALL lets the kernel fill big buffers in one call (fewer wake-ups
    and GIL hand-overs); it may still return short (timeout, signal).
    """
    got = 0
    total = len(view)
    while got < total:
        n = sock.recv_into(view[got:], total - got, socket.MSG_WAITALL)
        if not n:
            raise EOFError('connection closed in the middle of a message')
        got += n


def _recv_exact(sock, n):
    buf = bytearray(n)
    _recv_into(sock, memoryview(buf))
    return bytes(buf)


def _send_msg(sock, obj):
    data = json.dumps(obj, separators=(',', ':')).encode('utf-8')
    sock.sendall(b'J' + _MSG.pack(len(data)) + data)


def _recv_msg_body(sock):
    (length,) = _MSG.unpack(_recv_exact(sock, _MSG.size))
    if length > _MAX_MSG:
        raise ProtocolError('control message too large (%d bytes)' % length)
    return json.loads(_recv_exact(sock, length).decode('utf-8'))


def _recv_msg(sock):
    """Next JSON message, or None on a clean EOF."""
    kind = sock.recv(1)
    if not kind:
        return None
    if kind != b'J':
        raise ProtocolError('expected a control message, got %r' % kind)
    return _recv_msg_body(sock)


def _encode_bitmap(bits):
    return base64.b64encode(zlib.compress(bytes(bits))).decode('ascii')


def _decode_bitmap(text, n):
    bits = bytearray(zlib.decompress(base64.b64decode(text)))
    if len(bits) != n:
        raise ProtocolError('chunk map has %d entries, expected %d'
                            % (len(bits), n))
    return bits


def _chunk_count(size, chunk_size):
    return (size + chunk_size - 1) // chunk_size


#: what a socket raises when its kernel timeout (SO_RCVTIMEO/SO_SNDTIMEO) expires
_TIMEOUTS = (socket.timeout, BlockingIOError)


def _set_timeouts(sock, seconds):
    """Blocking socket with kernel-side timeouts: no poll() before each call."""
    sock.settimeout(None)
    whole = int(seconds)
    timeval = struct.pack('@ll', whole, int((seconds - whole) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


def _keepalive(sock, idle=60, interval=10, count=6):
    """Notice a peer that vanished without closing (about 2 minutes)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (('TCP_KEEPIDLE', idle), ('TCP_KEEPINTVL', interval),
                        ('TCP_KEEPCNT', count)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def _quiet_close(sock):
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _describe_oserror(exc):
    name = errno.errorcode.get(exc.errno, '') if exc.errno else ''
    return '%s (%s)' % (exc.strerror or exc, name) if name else str(exc)


# -- the chunk digest ---------------------------------------------------------

class _NoHash:
    """Stands in for the chunk hash when the sender turned it off."""

    def update(self, data):
        pass

    def digest(self):
        return bytes(DIGEST_LEN)
