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
