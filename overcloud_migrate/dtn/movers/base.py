"""The contract every mover fulfils (loaded through stevedore).

Entry point namespace: ``overcloud_migrate.dtn.movers``.
"""

import abc
import dataclasses
import threading
import typing

from overcloud_migrate.exceptions import OvercloudMigrateError


class MoverError(OvercloudMigrateError):
    """A transfer failed; the message names the file and the cause."""


class MoverUnavailable(MoverError):
    """The mover cannot run here (missing binary, unreachable peer, ...)."""


class TransferCancelled(MoverError):
    """The transfer was cancelled through its cancel event."""


@dataclasses.dataclass
class TransferRequest:
    """One file from this DTN to another.

    ``source_path`` is already resolved and confined to an export root of
    the source DTN.  ``dest_path`` is relative to the destination DTN's
    export root (the destination confines it again itself).
    """
    source_path: str
    dest_host: str
    dest_port: int            # the destination's data port (mover specific)
    dest_path: str
    streams: int = 4
    verify_sha256: bool = False
    options: dict = dataclasses.field(default_factory=dict)
    #: where the mover notes temporary files it makes elsewhere (see
    #: :class:`Leftovers`); None: not recorded
    leftovers: typing.Optional['Leftovers'] = None


class Leftovers(abc.ABC):
    """A record of temporary files, kept until they are gone.

    A mover calls :meth:`add` before it makes one and :meth:`remove` once
    it is renamed or deleted.  What is still recorded when the service
    starts again (the destination was down, the service was killed) is
    handed to :meth:`Mover.remove_leftover`.
    """

    @abc.abstractmethod
    def add(self, where):
        """Record ``where`` (a JSON-able dict); return a key."""

    @abc.abstractmethod
    def remove(self, key):
        """Forget the record ``key``."""


@dataclasses.dataclass
class TransferResult:
    bytes: int                # logical size of the file
    bytes_on_wire: int        # payload actually sent (holes/zeros skipped)
    seconds: float
    sha256: typing.Optional[str] = None

    @property
    def mb_per_s(self):
        """Logical throughput in MB/s (10**6 bytes), as the seed reports."""
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0


ProgressCallback = typing.Callable[[int], None]  # bytes done so far


class Mover(abc.ABC):
    """A way to move one file between two DTNs."""

    #: short name users pick with --mover
    name = None
    #: subset of {'parallel-streams', 'sparse', 'resume', 'checksum',
    #: 'third-party'}
    capabilities = frozenset()

    def check_path(self, path):
        """Raise :class:`~overcloud_migrate.dtn.paths.PathRefused` for a
        path this mover cannot carry unchanged (default: any)."""

    def remove_leftover(self, where):
        """Remove a temporary file noted with :class:`Leftovers`; True when
        it is gone (or never existed)."""
        return True

    @abc.abstractmethod
    def check(self):
        """Raise :class:`MoverUnavailable` saying why this mover cannot run."""

    @abc.abstractmethod
    def transfer(self, request: TransferRequest,
                 progress: ProgressCallback,
                 cancel: threading.Event) -> TransferResult:
        """Move the file; raise :class:`MoverError` on failure.

        A failed or cancelled transfer never leaves a destination file that
        looks complete.
        """
