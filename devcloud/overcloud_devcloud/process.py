"""Start, watch and stop the bed's processes by PID.

A pidfile holds the PID and the process start time (from /proc) so that a
recycled PID is never mistaken for ours and never signalled.
"""

import errno
import json
import os
import pathlib
import signal
import socket
import subprocess
import time


class ProcessError(Exception):
    """A process of the bed failed; the message says which and why."""


def _start_ticks(pid):
    """Start time of ``pid`` in clock ticks since boot, or None if gone."""
    try:
        stat = pathlib.Path('/proc/%d/stat' % pid).read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces; fields after it are fixed.
    fields = stat.rsplit(')', 1)[1].split()
    if fields[0] == 'Z':  # zombie: as good as dead
        return None
    return int(fields[19])


def start(name, argv, pidfile, logfile, env=None, cwd=None):
    """Start ``argv`` in its own session, output to ``logfile``.

    Returns the PID.  ``argv`` is a list: nothing goes through a shell.
    """
    logfile = pathlib.Path(logfile)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(pidfile).parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, 'ab') as log:
        log.write(('--- %s: starting %s\n' % (time.strftime('%F %T'), name))
                  .encode())
        log.flush()
        proc = subprocess.Popen(
            [str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True)
    write_pidfile(pidfile, proc.pid)
    return proc.pid


def write_pidfile(pidfile, pid):
    record = {'pid': pid, 'start': _start_ticks(pid)}
    tmp = pathlib.Path(str(pidfile) + '.tmp')
    tmp.write_text(json.dumps(record))
    os.replace(tmp, pidfile)


def read_pid(pidfile):
    """PID recorded in ``pidfile`` if that very process still runs."""
    try:
        record = json.loads(pathlib.Path(pidfile).read_text())
    except (FileNotFoundError, ValueError):
        return None
    pid = record.get('pid')
    if not isinstance(pid, int):
        return None
    ticks = _start_ticks(pid)
    if ticks is None or (record.get('start') not in (None, ticks)):
        return None
    return pid


def alive(pid):
    return pid is not None and _start_ticks(pid) is not None


def stop(pidfile, timeout=20):
    """Stop the process of ``pidfile`` and its process group.

    Returns the PID stopped, or None if nothing was running.
    """
    return stop_many([pidfile], timeout)[0]


def stop_many(pidfiles, timeout=20):
    """Stop several processes at once: SIGTERM all, SIGKILL stragglers.

    Returns, in order, the PID stopped for each pidfile (None: not running).
    """
    pids = [read_pid(pidfile) for pidfile in pidfiles]
    for pid in pids:
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if pid is None:
            continue
        if alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while alive(pid):
                time.sleep(0.05)
        # Helpers left in the group (uWSGI workers) go too, and are waited
        # for: one that is still dying may hold a port a restart needs.
        _signal_group(pid, signal.SIGKILL)
        settle = time.monotonic() + 10
        while _group_members(pid) and time.monotonic() < settle:
            time.sleep(0.05)
    for pidfile in pidfiles:
        pathlib.Path(pidfile).unlink(missing_ok=True)
    return pids


def _group_members(pgid):
    """PIDs of the live (not zombie) processes in process group ``pgid``."""
    return [pid for pid, fields in _proc_stats()
            if fields[0] != 'Z' and int(fields[2]) == pgid]


def _proc_stats():
    """(pid, fields after the command name) of every process in /proc."""
    for entry in pathlib.Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / 'stat').read_text()
        except OSError:
            continue
        yield int(entry.name), stat.rsplit(')', 1)[1].split()


def _signal_group(pid, sig):
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def tree_rss(pid):
    """Resident memory, in bytes, of ``pid`` and all its descendants."""
    children = {}
    for child, fields in _proc_stats():
        children.setdefault(int(fields[1]), []).append(child)
    total, todo = 0, [pid]
    page = os.sysconf('SC_PAGE_SIZE')
    while todo:
        current = todo.pop()
        try:
            resident = int(pathlib.Path('/proc/%d/statm' % current)
                           .read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += resident * page
        todo.extend(children.get(current, ()))
    return total


def port_in_use(port, host='127.0.0.1'):
    """True when something already listens on (or holds) ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def port_holder(port):
    """(pid, command) of the process listening on TCP ``port``, if known."""
    inodes = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            lines = pathlib.Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(':', 1)[1], 16)
            if local_port == port and fields[3] == '0A':  # LISTEN
                inodes.add(fields[9])
    if not inodes:
        return None
    targets = {'socket:[%s]' % inode for inode in inodes}
    for entry in pathlib.Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / 'fd').iterdir():
                if os.readlink(fd) in targets:
                    command = (entry / 'cmdline').read_bytes().split(b'\0')
                    return int(entry.name), os.path.basename(
                        command[0].decode(errors='replace'))
        except OSError:
            continue
    return None


def tail(path, lines=20):
    try:
        with open(path, 'rb') as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode(errors='replace')
    except FileNotFoundError:
        return ''
    return '\n'.join(text.splitlines()[-lines:])
