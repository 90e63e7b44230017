"""The builtin mover's authenticated channel: handshake and frame MACs.

The handshake proves both ends know the shared data token, and binds what
follows to this one connection:

1. the receiver sends ``MAGIC`` and a random nonce ``Ns``;
2. the sender answers with its own nonce ``Nc`` and
   ``HMAC-SHA256(token, "client" | Ns | Nc)``;
3. the receiver answers ``Y`` and ``HMAC-SHA256(token, "server" | Ns | Nc)``;
4. both derive the session key ``K = HMAC-SHA256(token, "session" | Ns |
   Nc)`` and one key per direction from it.

Every frame after the handshake (control messages, acknowledgements,
chunks) ends with a 16-byte Poly1305 tag under a one-time key
``HMAC-SHA256(direction key, sequence number)``.  A host that relays the
handshake between a sender and a receiver (it sits between two DTNs, or it
registered itself as a node) never learns ``K``: it can pass frames on,
unchanged and in order, or drop the connection, but any frame of its own
(or a changed, replayed or reordered one) fails its tag and ends the
connection.  Poly1305 (from ``cryptography``) runs at several GB/s, so the
tag doubles as the chunk checksum.
"""

import hashlib
import hmac
import json
import secrets
import struct

from cryptography.hazmat.primitives import poly1305

from overcloud_migrate.dtn.movers.blockpipe import wire

MAGIC = b'OCMBP2\n'
NONCE_LEN = 32
MAC_LEN = 32
TAG_LEN = 16
_MSG = struct.Struct('!I')
_SEQ = struct.Struct('!Q')


class AuthFailed(wire.ProtocolError):
    """The peer does not know the token, or a frame failed its tag."""


def _hmac(key, *parts):
    return hmac.new(key, b''.join(parts), hashlib.sha256).digest()


class _Direction:
    """One direction of a channel: its key and its frame counter."""

    def __init__(self, key):
        self._key = key
        self._seq = 0

    def next_mac(self):
        otk = _hmac(self._key, _SEQ.pack(self._seq))
        self._seq += 1
        return poly1305.Poly1305(otk)


class Channel:
    """An authenticated connection: ``sock`` plus the per-direction MACs.

    One thread may send and another receive at the same time (each
    direction has its own counter); two senders must not share it.
    """

    def __init__(self, sock, session_key, client):
        self.sock = sock
        c2s = _Direction(_hmac(session_key, b'c2s'))
        s2c = _Direction(_hmac(session_key, b's2c'))
        self._out, self._in = (c2s, s2c) if client else (s2c, c2s)

    def fileno(self):
        return self.sock.fileno()

    # control messages -----------------------------------------------------

    def send_msg(self, obj):
        data = json.dumps(obj, separators=(',', ':')).encode('utf-8')
        frame = b'J' + _MSG.pack(len(data)) + data
        mac = self._out.next_mac()
        mac.update(frame)
        self.sock.sendall(frame + mac.finalize())

    def recv_msg_body(self):
        """The rest of a JSON frame whose ``J`` was read already."""
        head = wire._recv_exact(self.sock, _MSG.size)
        (length,) = _MSG.unpack(head)
        if length > wire._MAX_MSG:
            raise wire.ProtocolError('control message too large (%d bytes)'
                                     % length)
        data = wire._recv_exact(self.sock, length)
        tag = wire._recv_exact(self.sock, TAG_LEN)
        mac = self._in.next_mac()
        mac.update(b'J' + head + data)
        if not hmac.compare_digest(mac.finalize(), tag):
            raise AuthFailed('a control message failed its MAC (relayed, '
                             'changed or replayed)')
        return json.loads(data.decode('utf-8'))

    def recv_msg(self):
        """Next JSON message, or None on a clean EOF."""
        kind = self.sock.recv(1)
        if not kind:
            return None
        if kind != b'J':
            raise wire.ProtocolError('expected a control message, got %r'
                                     % kind)
        return self.recv_msg_body()

    # chunks -----------------------------------------------------------------

    def chunk_mac_out(self):
        """The MAC of the next frame sent (feed it, then send its tag)."""
        return self._out.next_mac()

    def chunk_mac_in(self):
        """The MAC of the next frame received."""
        return self._in.next_mac()


def client_handshake(sock, key, where):
    """Authenticate to a receiver; a :class:`Channel`.

    Raises :class:`AuthFailed` when the receiver refuses the token or
    cannot prove it knows it, ``wire.ProtocolError`` for something that is
    no data port.
    """
    banner = wire._recv_exact(sock, len(MAGIC) + NONCE_LEN)
    if banner[:len(MAGIC)] != MAGIC:
        raise wire.ProtocolError('%s is not a builtin mover data port (or an '
                                 'older protocol version)' % where)
    server_nonce = banner[len(MAGIC):]
    client_nonce = secrets.token_bytes(NONCE_LEN)
    sock.sendall(client_nonce + _hmac(key, b'client', server_nonce,
                                      client_nonce))
    if wire._recv_exact(sock, 1) != b'Y':
        raise AuthFailed('the data port %s refused our token' % where)
    proof = wire._recv_exact(sock, MAC_LEN)
    if not hmac.compare_digest(proof, _hmac(key, b'server', server_nonce,
                                            client_nonce)):
        raise AuthFailed('the data port %s does not know our token' % where)
    return Channel(sock, _hmac(key, b'session', server_nonce, client_nonce),
                   client=True)


def server_handshake(sock, key):
    """Authenticate a sender; a :class:`Channel`, or None (refused)."""
    server_nonce = secrets.token_bytes(NONCE_LEN)
    sock.sendall(MAGIC + server_nonce)
    client_nonce = wire._recv_exact(sock, NONCE_LEN)
    client_mac = wire._recv_exact(sock, MAC_LEN)
    if not hmac.compare_digest(client_mac, _hmac(key, b'client', server_nonce,
                                                 client_nonce)):
        sock.sendall(b'N')
        return None
    sock.sendall(b'Y' + _hmac(key, b'server', server_nonce, client_nonce))
    return Channel(sock, _hmac(key, b'session', server_nonce, client_nonce),
                   client=False)


class ChunkTag:
    """The tag of one chunk frame: its data (unless the sender left the
    data out of the tag), then its header and segment table."""

    def __init__(self, mac, with_data=True):
        self._mac = mac
        self.with_data = with_data

    def update(self, data):
        if self.with_data:
            self._mac.update(data)

    def finish(self, tail):
        self._mac.update(tail)
        return self._mac.finalize()
