"""The sync's frames on the builtin mover's authenticated channel.

A sync (see :mod:`.delta_sender` and :mod:`.delta_receiver`) uses the same
handshake and per-frame Poly1305 tags as a transfer (:mod:`.session`), with
two frames of its own on its data connections:

* ``b'D' + u64 offset + u64 length``, the ``length`` bytes, then a 16-byte
  tag of the bytes followed by the 17-byte header: blocks of data, written
  in place at ``offset``;
* ``b'Z' + u64 offset + u64 length`` then the tag of the header: a run of
  zero blocks (no data crosses; the destination punches a hole or writes
  zeros).

``offset`` is on a block boundary and the run ends on one (or at the end of
the file); a frame holds at most :data:`MAX_FRAME` bytes.  Control messages
are the channel's JSON frames.
"""

import array
import base64
import hmac
import struct

from overcloud_migrate.dtn.movers.blockpipe import session
from overcloud_migrate.dtn.movers.blockpipe.wire import (
    ProtocolError,
    _recv_exact,
    _recv_into)

#: most bytes in one data frame (and in each side's buffer per stream)
MAX_FRAME = 1024 * 1024
#: blocks whose digests go in one "want" message
WANT_BATCH = 32768
DATA, ZEROS = b'D', b'Z'
_FRAME = struct.Struct('!QQ')
HEADER_LEN = 1 + _FRAME.size


def _sendmsg_all(sock, parts):
    """Send every byte of ``parts`` (buffers), one system call if it can."""
    parts = [memoryview(part).cast('B') for part in parts if len(part)]
    while parts:
        sent = sock.sendmsg(parts)
        while parts and sent >= len(parts[0]):
            sent -= len(parts[0])
            parts.pop(0)
        if parts and sent:
            parts[0] = parts[0][sent:]


def send_data(chan, offset, data):
    """One ``D`` frame: the bytes ``data`` (a buffer) of the file at
    ``offset``."""
    head = DATA + _FRAME.pack(offset, len(data))
    mac = chan.chunk_mac_out()
    mac.update(data)
    mac.update(head)
    _sendmsg_all(chan.sock, (head, data, mac.finalize()))


def send_zeros(chan, offset, length):
    """One ``Z`` frame: ``length`` bytes of zeros at ``offset``."""
    head = ZEROS + _FRAME.pack(offset, length)
    mac = chan.chunk_mac_out()
    mac.update(head)
    chan.sock.sendall(head + mac.finalize())


def recv_frame_head(chan, kind):
    """(offset, length) of a ``D`` or ``Z`` frame whose kind byte was read."""
    return _FRAME.unpack(_recv_exact(chan.sock, _FRAME.size))


def recv_data(chan, offset, view):
    """Read the bytes of a ``D`` frame into ``view`` and check its tag;
    False when the tag does not match (nothing may be written then)."""
    mac = chan.chunk_mac_in()
    _recv_into(chan.sock, view)
    mac.update(view)
    mac.update(DATA + _FRAME.pack(offset, len(view)))
    return hmac.compare_digest(_recv_exact(chan.sock, session.TAG_LEN),
                               mac.finalize())


def recv_zeros_tag(chan, offset, length):
    mac = chan.chunk_mac_in()
    mac.update(ZEROS + _FRAME.pack(offset, length))
    return hmac.compare_digest(_recv_exact(chan.sock, session.TAG_LEN),
                               mac.finalize())


def check_run(offset, length, size, block_size):
    """Raise ProtocolError unless [offset, offset+length) is a run of whole
    blocks of a ``size``-byte file, at most MAX_FRAME bytes."""
    end = offset + length
    if (length <= 0 or length > MAX_FRAME or offset % block_size
            or end > size or (length % block_size and end != size)):
        raise ProtocolError('a frame of %d bytes at %d does not fit blocks of '
                            '%d in %d bytes' % (length, offset, block_size,
                                                size))


def encode_digests(digests):
    return base64.b64encode(array.array('Q', digests).tobytes()).decode(
        'ascii')


def decode_digests(text, count):
    values = array.array('Q')
    values.frombytes(base64.b64decode(text))
    if len(values) != count:
        raise ProtocolError('%d digests sent for %d blocks'
                            % (len(values), count))
    return values
