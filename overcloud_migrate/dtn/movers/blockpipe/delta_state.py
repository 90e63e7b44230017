"""The saved signatures of syncs, in a DTN's state directory.

One file per (key, role, file): ``<key>+<role>+<hash of the path>.sync``,
where ``role`` is ``src`` (the source's record of what the destination
holds) or ``dst`` (the destination's record of what it wrote).  Keys are
``[A-Za-z0-9._-]{1,128}``, so ``+`` never occurs in one and a key's files
are exactly those starting with ``<key>+``.

A file is a small JSON header (the epoch both sides share, the round, the
path, the peer) then the :class:`~overcloud_migrate.dtn.delta.Signature`,
written atomically (temporary file, fsync, rename, fsync of the
directory): after a crash a side holds the previous round's file or the
new one, never half of one.
"""

import hashlib
import json
import os
import re
import secrets
import struct

from overcloud_migrate.dtn import constants
from overcloud_migrate.dtn import delta

KEY = re.compile(constants.SYNC_KEY_PATTERN)
ROLES = ('src', 'dst')
_MAGIC = b'OMSYNC1\n'
_LEN = struct.Struct('!I')
_SUFFIX = '.sync'


class StateError(ValueError):
    """A key or a state file that cannot be used."""


def check_key(key):
    if not isinstance(key, str) or not KEY.match(key):
        raise StateError('The sync key %r is not valid (1-128 letters, '
                         'digits, ".", "_" or "-").' % (key,))
    return key


def new_epoch():
    """A fresh id for a pair of signatures that belong together."""
    return secrets.token_hex(16)


def _name(key, role, path):
    check_key(key)
    if role not in ROLES:
        raise StateError('unknown role %r' % (role,))
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:32]
    return '%s+%s+%s%s' % (key, role, digest, _SUFFIX)


class SavedRound:
    """What one side remembers of the last committed round."""

    def __init__(self, meta, sig):
        self.meta = meta
        self.sig = sig

    @property
    def epoch(self):
        return self.meta.get('epoch')

    @property
    def round(self):
        return int(self.meta.get('round') or 0)


def load(state_dir, key, role, path):
    """The :class:`SavedRound` of ``key`` for ``path``, or None (none
    saved, or a file that cannot be used: the round starts afresh)."""
    full = os.path.join(state_dir, _name(key, role, path))
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, 'rb') as handle:
        data = handle.read()
    try:
        if not data.startswith(_MAGIC):
            raise StateError('%s is not a sync state file' % full)
        at = len(_MAGIC)
        (length,) = _LEN.unpack_from(data, at)
        at += _LEN.size
        meta = json.loads(data[at:at + length].decode('utf-8'))
        sig = delta.Signature.from_bytes(data[at + length:],
                                         'signature in %s' % full)
    except (StateError, ValueError, struct.error, UnicodeDecodeError):
        return None
    if meta.get('path') != path or meta.get('key') != key:
        return None
    return SavedRound(meta, sig)


def save(state_dir, key, role, path, sig, **meta):
    """Save ``sig`` and ``meta`` for ``key`` and ``path`` atomically."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    meta = dict(meta, key=key, role=role, path=path)
    header = json.dumps(meta, sort_keys=True).encode('utf-8')
    body = _MAGIC + _LEN.pack(len(header)) + header + sig.to_bytes()
    full = os.path.join(state_dir, _name(key, role, path))
    tmp = '%s.%s.tmp' % (full, secrets.token_hex(4))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                 | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, full)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(state_dir)


def _fsync_dir(path):
    dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def metas(state_dir, key, role=None):
    """The headers of every file saved for ``key`` (of ``role`` if given)."""
    found = []
    for name in _names(state_dir, key, role):
        try:
            with open(os.path.join(state_dir, name), 'rb') as handle:
                data = handle.read(64 * 1024)
            (length,) = _LEN.unpack_from(data, len(_MAGIC))
            start = len(_MAGIC) + _LEN.size
            found.append(json.loads(data[start:start + length]))
        except (OSError, ValueError, struct.error):
            continue
    return found


def forget(state_dir, key, role=None):
    """Remove every file of ``key`` (of ``role`` if given); their count."""
    removed = 0
    for name in _names(state_dir, key, role):
        try:
            os.unlink(os.path.join(state_dir, name))
            removed += 1
        except FileNotFoundError:
            pass
    if removed:
        _fsync_dir(state_dir)
    return removed


def _names(state_dir, key, role):
    check_key(key)
    prefix = '%s+%s' % (key, '%s+' % role if role else '')
    try:
        names = os.listdir(state_dir)
    except FileNotFoundError:
        return []
    return sorted(name for name in names
                  if name.startswith(prefix) and name.endswith(_SUFFIX))
