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


#: The capabilities a driver may declare, and what each means.
CAPABILITIES = {
    'streaming': 'bytes flow from source to destination without a copy at '
                 'rest',
    'staging': 'the image is staged as a file on the way',
    'resume': 'an interrupted transfer continues where it stopped',
    'remote': 'the bytes travel through another host',
    'third-party': 'two services move the bytes between themselves',
    'handoff': 'can leave items for the Receiver in its directory',
    'deltas': 'keeps a copy of a volume in step round by round, moving only '
              'the blocks that changed (warm migration)',
}


@dataclasses.dataclass(frozen=True)
class Opt:
    """One command-line option of a driver, declared on its class.

    ``name`` is the driver's keyword argument; the flag is
    ``--<driver>-<flag>`` (``flag`` defaults to ``name`` with hyphens).
    """
    name: str
    help: str
    flag: typing.Optional[str] = None
    metavar: typing.Optional[str] = None
    #: int or str (default); see ``minimum``
    type: typing.Any = None
    #: the least whole number an int option takes
    minimum: typing.Optional[int] = None
    #: a switch (store_true) rather than a value
    switch: bool = False
    required: bool = False

    def option(self, driver):
        """The full flag, e.g. ``--ssh-key`` for driver ``ssh``."""
        return '--%s-%s' % (driver, self.flag or self.name.replace('_', '-'))

    def dest(self, driver):
        """The argparse destination of :meth:`option`."""
        return self.option(driver).lstrip('-').replace('-', '_')


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
class SyncResult:
    """One sync round of one volume (:meth:`Transport.sync_volume`)."""
    #: the volume's bytes
    size: int
    #: payload bytes that crossed the link this round
    bytes: int
    #: bytes of the blocks found changed since the previous round
    changed_bytes: int
    #: bytes sent again because the destination found them damaged
    repaired_bytes: int
    seconds: float
    #: 1 for the first round of a key, then 2, 3, ...
    round: int


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
    #: a subset of :data:`CAPABILITIES` ('handoff': see
    #: :meth:`handoff_image` and :meth:`handoff_file`)
    capabilities = frozenset()
    #: the driver's command-line options (:class:`Opt`), in --help order
    options = ()
    #: the option ``migrate --handoff DIR`` fills with DIR, if any
    handoff_option = None
    #: the option ``migrate --timeout`` fills, if any
    timeout_option = None

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

    # -- deltas (warm migration): optional --------------------------------

    def reaches_volumes(self):
        """True when this driver, as configured, reaches the Cinder
        volumes' bytes at both ends (then even a cold migration moves them
        with :meth:`sync_volume`, with nothing made at the source)."""
        return False

    def check_deltas(self, images=False):
        """Raise :class:`PreflightError` saying why this driver, as
        configured, cannot keep volumes in step (``deltas``); ``images``:
        nor bring a volume in step with a source image
        (:meth:`sync_image`)."""
        raise PreflightError('The %s transport cannot move deltas.'
                             % self.name)

    def sync_volume(self, source_volume_id: str, dest_volume_id: str,
                    key: str, progress: ProgressCallback) -> SyncResult:
        """One sync round: make the destination volume's bytes those the
        source volume has now, sending only what changed since the last
        round of ``key`` (every non-zero block in the first).  The source
        may be in use; the destination volume must be detached."""
        raise PreflightError('The %s transport cannot move deltas.'
                             % self.name)

    def sync_image(self, image_id: str, dest_volume_id: str, key: str,
                   progress: ProgressCallback) -> SyncResult:
        """As :meth:`sync_volume`, from the bytes of a source image (a
        raw snapshot of a server's root disk) into a destination volume at
        least as large."""
        raise PreflightError('The %s transport cannot move deltas.'
                             % self.name)

    def reads_disks(self):
        """True when this driver, as configured, reads an image-booted
        server's root disk in the source Nova instance store
        (:meth:`sync_disk`), so no snapshot is needed."""
        return False

    def sync_disk(self, server_id: str, host: str, dest_volume_id: str,
                  key: str, progress: ProgressCallback) -> SyncResult:
        """As :meth:`sync_volume`, from the root disk file of server
        ``server_id`` on compute host ``host`` (running during a round,
        stopped at the cut-over) into a destination volume at least as
        large."""
        raise PreflightError('The %s transport cannot read root disks.'
                             % self.name)

    def forget_sync(self, key: str):
        """Drop what both ends keep for ``key`` (idempotent)."""


def delta_transports():
    """Names of the installed transports that can move deltas."""
    return sorted(name for name, cls in driver_classes().items()
                  if 'deltas' in cls.capabilities)


def names():
    """Names of the installed transport drivers, sorted."""
    return sorted(stevedore.ExtensionManager(NAMESPACE).names())


def driver_classes(on_failure=None):
    """{name: driver class} of the installed drivers, none instantiated, in
    the order their packages declare them (--help lists their options so);
    a driver that cannot be imported is left out (``on_failure(name, exc)``
    is told)."""
    def failed(manager, entrypoint, exc):
        if on_failure is not None:
            on_failure(entrypoint.name, exc)

    manager = stevedore.ExtensionManager(
        NAMESPACE, invoke_on_load=False, on_load_failure_callback=failed)
    return {ext.name: ext.plugin for ext in manager}


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
