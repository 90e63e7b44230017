"""Atomic file writes: a temporary name, fsync, rename, fsync of the
directory, so a reader sees either the old file or the whole new one, and
a crash leaves no half file under the final name."""

import os
import uuid


def fsync_dir(dir_fd):
    try:
        os.fsync(dir_fd)
    except OSError:  # some network file systems refuse fsync on a dir
        pass


def atomic_write(dir_fd, name, data):
    """Write ``data`` (bytes) to ``name`` in the directory ``dir_fd``:
    a temporary name, fsync, rename, fsync of the directory."""
    tmp = '.%s.tmp-%s' % (name, uuid.uuid4().hex[:8])
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                 0o644, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.close(fd)
    os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    fsync_dir(dir_fd)


def write_file(path, data):
    """:func:`atomic_write` by path (the directory must exist)."""
    directory, name = os.path.split(os.path.abspath(path))
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        atomic_write(dir_fd, name, data)
    finally:
        os.close(dir_fd)
