"""The ``builtin`` mover: our own parallel, sparse, resumable data path.

Talks to the :class:`~overcloud_migrate.dtn.movers.blockpipe.Receiver` that
the destination DTN service runs on its data port (22642 by default).  The
data path lives in :mod:`overcloud_migrate.dtn.movers.blockpipe`; it needs
the ``cryptography`` package (Poly1305), imported only when this mover is
used.
"""

from overcloud_migrate.dtn.movers import base

DEFAULT_DATA_PORT = 22642


def _blockpipe():
    try:
        from overcloud_migrate.dtn.movers import blockpipe
    except ImportError as exc:
        raise base.MoverUnavailable(
            'the builtin mover needs the cryptography package (pip install '
            '"cryptography>=3.1"): %s' % exc) from None
    return blockpipe


class BuiltinMover(base.Mover):
    """Parallel TCP streams, holes and zeros skipped, a keyed MAC per chunk.

    ``token`` is the secret shared with the destination's data port; a
    request may carry its own in ``request.options['token']``.  Other
    request options: ``chunk_size`` (bytes), ``timeout`` (seconds),
    ``retries``.
    """

    name = 'builtin'
    capabilities = frozenset({'parallel-streams', 'sparse', 'resume',
                              'checksum'})

    def __init__(self, token=None, peer_host=None, peer_port=DEFAULT_DATA_PORT,
                 chunk_size=None, timeout=60.0):
        self.token = token
        self.peer_host = peer_host
        self.peer_port = peer_port
        self.chunk_size = chunk_size
        self.timeout = timeout

    def check(self, host=None, port=None):
        """cryptography is importable and, if a peer is known, its data port
        answers.

        With a token the probe also proves both ends share it.
        """
        blockpipe = _blockpipe()
        host = host or self.peer_host
        port = port or self.peer_port
        if host:
            blockpipe.probe(host, port, token=self.token,
                            timeout=min(self.timeout, 10.0))

    def transfer(self, request, progress, cancel):
        blockpipe = _blockpipe()
        options = request.options or {}
        token = options.get('token') or self.token
        if not token:
            raise base.MoverError(
                'cannot send %s with the builtin mover: no data port token '
                'configured' % request.source_path)
        chunk_size = (options.get('chunk_size') or self.chunk_size
                      or blockpipe.DEFAULT_CHUNK_SIZE)
        return blockpipe.send(
            request.source_path, request.dest_host,
            request.dest_port or DEFAULT_DATA_PORT, request.dest_path, token,
            streams=request.streams, chunk_size=int(chunk_size),
            verify_sha256=request.verify_sha256, progress=progress,
            cancel=cancel, timeout=float(options.get('timeout', self.timeout)),
            # a cancelled transfer leaves nothing behind (a failed one keeps
            # its .part for the next attempt to resume)
            keep_partial=False, source_root=options.get('source_root'),
            retries=int(options.get('retries', 3)))
