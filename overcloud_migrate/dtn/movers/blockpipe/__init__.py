"""The builtin DTN-to-DTN data path: parallel TCP streams over chunk ranges.

A :class:`Receiver` runs inside the destination DTN service; :func:`send`
runs on the source DTN.  Plain sockets and files, no OpenStack imports.

Modules: :mod:`.wire` (constants, messages, handshake, socket helpers),
:mod:`.extents` (holes, zero blocks, hashing file ranges), :mod:`.receiver`
and :mod:`.sender`.  This package exports their public names.

Design, in the order a byte meets it:

* The file is cut into chunks (8 MiB by default).  ``streams`` TCP
  connections take chunks from one shared queue, so a slow stream never holds
  up the others.
* Holes are found with ``SEEK_DATA``/``SEEK_HOLE`` (once for the whole file,
  and not at all for a file with all its blocks allocated) and never read.
  All-zero blocks (128 KiB) are found by a probe of each block's first
  bytes (the whole block is read only when those are zeros) and are not
  sent either.  The data left is read once, with ``O_DIRECT`` where the
  file system allows (:mod:`.direct`): the whole chunk straight from the
  device into an aligned buffer, zero blocks found there; each piece of it
  is tagged and that same buffer is sent, so what is tagged is exactly
  what goes out (elsewhere, through a small buffer, piece by piece).  With
  the chunk hash off nothing needs reading in Python and the data goes out
  with ``sendfile``.
* Every chunk carries a Poly1305 tag of its data, header and segment table
  under a one-time key of this connection (:mod:`.session`): a keyed MAC,
  not only a checksum.  The receiver buffers the chunk (feeding each piece
  to the MAC as it arrives, while it is still in the CPU cache), checks the
  tag and only then writes it (with ``O_DIRECT`` from that page-aligned
  buffer where the file system allows: no page-cache copy or writeback
  for the receiver to pay),
  so a bad chunk never touches the disk (or, with ``use_splice``, splices it
  to the file, checks it there and punches it out again if bad); it answers
  with a negative acknowledgement and the sender sends that chunk again.
* The destination is ``<name>.part`` (ftruncated to the full size, so it
  stays sparse: only data is written) plus ``<name>.part.state``, a small
  journal of the chunks known good.  A broken connection, or a new
  :func:`send` after the sender gave up, carries on from that journal: only
  missing chunks are sent again.
* On commit the receiver fsyncs, optionally compares a whole-file sha256
  with the sender's, and renames ``.part`` to the final name: a file under
  its final name is always complete.
* Each connection is authenticated before anything else: both ends
  exchange nonces and prove they know the shared token (HMAC-SHA256), and
  derive a session key from both nonces; every frame after that carries a
  Poly1305 tag under that key (see :mod:`.session`), so a relayed login
  cannot send frames of its own.

Wire format (after the handshake, protocol ``OCMBP2``): ``b'J' + u32
length + JSON + 16-byte tag`` for control messages and acknowledgements;
``b'C' + u64 index + u32 nseg`` then ``nseg`` times ``u64 offset + u64
length``, the segment bytes in that order and a 16-byte Poly1305 tag (of
the segment bytes, then the index/nseg header and the segment table) for a
chunk.  Modules: :mod:`.session` (handshake, tags), :mod:`.partfile` (the
``.part`` and its journal), :mod:`.outbound` and :mod:`.inbound` (helpers
of the sender and the receiver).
"""


from overcloud_migrate.dtn.movers.blockpipe.extents import data_extents
from overcloud_migrate.dtn.movers.blockpipe.extents import data_segments
from overcloud_migrate.dtn.movers.blockpipe.receiver import Receiver
from overcloud_migrate.dtn.movers.blockpipe.outbound import probe
from overcloud_migrate.dtn.movers.blockpipe.sender import send
from overcloud_migrate.dtn.movers.blockpipe.wire import DEFAULT_CHUNK_SIZE
from overcloud_migrate.dtn.movers.blockpipe.wire import DEFAULT_PORT
from overcloud_migrate.dtn.movers.blockpipe.wire import DEFAULT_TIMEOUT
from overcloud_migrate.dtn.movers.blockpipe.wire import Faults
from overcloud_migrate.dtn.movers.blockpipe.wire import MAX_CHUNK_SIZE
from overcloud_migrate.dtn.movers.blockpipe.wire import MIN_CHUNK_SIZE
from overcloud_migrate.dtn.movers.blockpipe.wire import ProtocolError
from overcloud_migrate.dtn.movers.blockpipe.wire import ZERO_BLOCK

__all__ = ['DEFAULT_CHUNK_SIZE', 'DEFAULT_PORT', 'DEFAULT_TIMEOUT', 'Faults',
           'MAX_CHUNK_SIZE', 'MIN_CHUNK_SIZE', 'ProtocolError', 'Receiver',
           'ZERO_BLOCK', 'data_extents', 'data_segments', 'probe', 'send']
