"""The contract of a transport driver, and loading drivers by name."""

import abc
import dataclasses
import hashlib
import typing

import stevedore
from stevedore import exception as stevedore_exc

from overcloud_migrate import exceptions
from overcloud_migrate import faults

NAMESPACE = 'overcloud_migrate.transports'
FAULT_ENV = faults.ENV


class TransportError(exceptions.OvercloudMigrateError):
    """A transfer failed; the message names the image and the cause."""


class PreflightError(TransportError):
    """The transport cannot work here; the message says why."""


class HashMismatch(TransportError):
    """The bytes that arrived are not the bytes that left."""


@dataclasses.dataclass
class ImageRef:
    """One image in one cloud: its connection, ID, size and hash."""
    connection: typing.Any
    id: str
    size: typing.Optional[int] = None
    hash_algo: typing.Optional[str] = None
    hash_value: typing.Optional[str] = None
    name: str = ''


@dataclasses.dataclass
class Result:
    bytes: int
    seconds: float
    sha512: str

    @property
    def mb_per_s(self):
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0


ProgressCallback = typing.Callable[[int, typing.Optional[int]], None]


class Transport(abc.ABC):
    """Moves the data of a source image into an existing, empty
    destination image (status ``queued``)."""

    #: short name users pick with --transport
    name = None
    #: subset of {'streaming', 'staging', 'resume', 'remote', 'handoff'}
    #: ('handoff': can leave items for the Receiver in its directory, see
    #: :meth:`handoff_image` and :meth:`handoff_file`)
    capabilities = frozenset()

    def __init__(self, **options):
        self.options = options

    @classmethod
    def available(cls):
        """Cheap: can this driver run on this host at all?"""
        return True

    @abc.abstractmethod
    def check(self, size=None):
        """Raise :class:`PreflightError` saying why this cannot run.

        ``size``, when known, is about how many bytes will be moved.
        """

    @abc.abstractmethod
    def transfer(self, source: ImageRef, dest: ImageRef,
                 progress: ProgressCallback) -> Result:
        """Copy the bytes; return their count and sha512 (computed on the
        way, so a mismatch with the source hash is caught)."""


    # -- handoff (``migrate --handoff``): optional ------------------------

    def handoff_image(self, source: ImageRef, item: str, name: str,
                      progress: ProgressCallback):
        """Write the source image's bytes to ``<directory>/<item>/<name>``
        atomically (temporary name, fsync, rename); the item directory is
        made if missing.

        :returns: ``(bytes, sha512)`` of what was written.
        """
        raise PreflightError('The %s transport cannot hand items off to a '
                             'directory.' % self.name)

    def handoff_file(self, item: str, name: str, data: bytes):
        """Write ``data`` to ``<directory>/<item>/<name>`` atomically."""
        raise PreflightError('The %s transport cannot hand items off to a '
                             'directory.' % self.name)


def names():
    """Names of the installed transport drivers, sorted."""
    return sorted(stevedore.ExtensionManager(NAMESPACE).names())


def load(name, **options):
    """The driver ``name`` with ``options``; a clear error if unknown."""
    try:
        manager = stevedore.DriverManager(
            NAMESPACE, name, invoke_on_load=True, invoke_kwds=options)
    except stevedore_exc.NoMatches:
        raise TransportError("Unknown transport '%s'; valid transports: %s"
                             % (name, ', '.join(names()) or 'none'))
    return manager.driver


class HashingReader:
    """Wraps an iterator of byte chunks: counts, hashes, reports progress.

    Also applies the ``corrupt`` test fault (env OVERCLOUD_MIGRATE_FAULT
    contains ``transfer:corrupt``): one byte of the first chunk is flipped
    once per process, so tests can prove that the hash check catches it.
    """

    _corrupted = False

    def __init__(self, chunks, total=None, progress=None):
        self.chunks = chunks
        self.total = total
        self.progress = progress
        self.count = 0
        self.digest = hashlib.sha512()

    def __iter__(self):
        for chunk in self.chunks:
            if not chunk:
                continue
            self.digest.update(chunk)
            if (not HashingReader._corrupted
                    and faults.wanted('transfer:corrupt')):
                HashingReader._corrupted = True
                chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
            self.count += len(chunk)
            if self.progress:
                self.progress(self.count, self.total)
            yield chunk

    @property
    def sha512(self):
        return self.digest.hexdigest()
