"""Start the RPC services of one project from a Python that imported it once.

On the bed's 2 cores a warm start is bound by CPU, and most of the CPU an
OpenStack service spends starting is the import of its code (about 1.6-2.4 s
each for nova-conductor, nova-scheduler, nova-compute, cinder-scheduler,
cinder-volume and cinder-backup, of about 3 s to be up).  A preloader imports
one project's code once, then forks one child per service it is asked for;
each child runs that service's own ``main()`` as the standalone command would
(same code, same configuration, its own session, log and pidfile), having
only skipped the imports.  Both clouds' services of a project come from one
preloader.

Nova's services run with native threads, Cinder's with eventlet, so each
project has its own preloader::

    python -m overcloud_devcloud.preload nova

It reads one request per line on stdin, as JSON: ``{"target":
"nova-conductor", "args": [...], "pidfile": ..., "logfile": ..., "name":
...}``; it forks, writes the child's pidfile and answers ``{"pid": N}`` (or
``{"error": "..."}``) on stdout.  It exits when stdin closes; its children
run on.
"""

import atexit
import gc
import importlib
import json
import logging
import os
import pathlib
import subprocess
import sys
import threading
import time

# What each preloader imports before its first fork: the commands' modules
# (their imports are most of a start) and what each main() imports next.
FAMILIES = {
    'nova': ('nova.cmd.conductor', 'nova.cmd.scheduler', 'nova.cmd.compute',
             'overcloud_devcloud.virt'),
    'cinder': ('cinder.cmd.scheduler', 'cinder.cmd.volume',
               'cinder.cmd.backup'),
}
# The services a preloader can start, and its family.
TARGETS = {
    'nova-conductor': 'nova', 'nova-scheduler': 'nova',
    'nova-compute': 'nova',
    'cinder-scheduler': 'cinder', 'cinder-volume': 'cinder',
    'cinder-backup': 'cinder',
}


def preload(family):
    """Import the code of ``family`` (in FAMILIES' order).

    The cyclic garbage collector is off meanwhile (imports make objects
    that live as long as the process: about a tenth of the import's CPU
    went to collections that find nothing) and is then told that what exists
    is permanent (``gc.freeze``), so that no child's collections walk, and
    copy, the pages they share with their siblings.
    """
    gc.disable()
    try:
        for name in FAMILIES[family]:
            importlib.import_module(name)
    finally:
        gc.enable()
    gc.freeze()


def run_target(target, args):
    """Run service ``target`` with command-line ``args`` in this process, as
    its own command (or the bed's launcher for it) would; returns its exit
    status."""
    if target in ('nova-conductor', 'nova-scheduler'):
        from overcloud_devcloud import nofork
        return nofork.main(['nofork', target, *args])
    sys.argv[:] = [target, *args]
    if target == 'nova-compute':
        from overcloud_devcloud import compute
        return compute.main()
    command = importlib.import_module('cinder.cmd.%s'
                                      % target.split('-', 1)[1])
    return command.main()


def _become(request, inherited):
    """In the child: a session of its own, output to the service's log,
    none of the preloader's pipes (``inherited``)."""
    os.setsid()
    for fd in inherited:
        os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    log = os.open(request['logfile'], os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                  0o644)
    os.write(log, ('--- %s: starting %s (preloaded)\n'
                   % (time.strftime('%F %T'), request['name'])).encode())
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    if 'eventlet' in sys.modules and sys.modules['eventlet'] is not None:
        # A hub made before the fork is not the child's to share.
        import eventlet.hubs
        eventlet.hubs.use_hub()
    try:
        import setproctitle
    except ImportError:
        pass
    else:
        setproctitle.setproctitle(' '.join([request['target'],
                                            *request['args']]))


def _child(request, inherited):
    """Never returns: runs the service, then exits with its status."""
    status = 1
    try:
        _become(request, inherited)
        status = run_target(request['target'], request['args'])
    except SystemExit as exc:
        status = exc.code
    except BaseException:
        import traceback
        traceback.print_exc()
        status = 1
    finally:
        try:
            atexit._run_exitfuncs()
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            if status is None:
                status = 0
            elif not isinstance(status, int):
                print(status, file=sys.stderr)
                status = 1
            os._exit(status)


def spawn(request, inherited=()):
    """Fork the service of ``request``; returns the child's PID once its
    pidfile is written.  The child closes the file descriptors
    ``inherited``."""
    from overcloud_devcloud import process
    if TARGETS.get(request['target']) is None:
        raise ValueError('no such service: %r' % request['target'])
    pathlib.Path(request['logfile']).parent.mkdir(parents=True,
                                                   exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child(request, inherited)
    process.write_pidfile(request['pidfile'], pid)
    return pid


def serve(family, requests, replies):
    """Answer ``requests`` (lines of JSON) until they end, on ``replies``
    (both files)."""
    started, cpu = time.monotonic(), time.process_time()
    preload(family)
    sys.stderr.write('%s: imported %s in %.1f s (%.1f s of CPU)\n' % (
        time.strftime('%F %T'), family, time.monotonic() - started,
        time.process_time() - cpu))
    sys.stderr.flush()
    inherited = [f.fileno() for f in (requests, replies)
                 if f.fileno() > 2]
    replies.write(json.dumps({'ready': family}) + '\n')
    replies.flush()
    for line in requests:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            if TARGETS.get(request.get('target')) != family:
                raise ValueError('a %s preloader cannot start %r'
                                 % (family, request.get('target')))
            reply = {'pid': spawn(request, inherited)}
        except Exception as exc:  # told to the bed, which reports it
            reply = {'error': '%s: %s' % (type(exc).__name__, exc)}
        replies.write(json.dumps(reply) + '\n')
        replies.flush()
    return 0


class PreloadError(Exception):
    """A preloader failed; the message says how, with its log's tail."""


class Preloader:
    """The bed's end of one preloader: start it, ask it for services."""

    def __init__(self, family, logfile, env=None):
        self.family = family
        self.logfile = pathlib.Path(logfile)
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._ready = False
        with open(self.logfile, 'ab') as log:
            log.write(('--- %s: starting the %s preloader\n'
                       % (time.strftime('%F %T'), family)).encode())
            log.flush()
            self._proc = subprocess.Popen(
                [sys.executable, '-m', 'overcloud_devcloud.preload', family],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                env=env, text=True, start_new_session=True)

    def _fail(self, message):
        from overcloud_devcloud import process
        raise PreloadError('the %s preloader %s; log %s ends with:\n%s'
                           % (self.family, message, self.logfile,
                              process.tail(self.logfile)))

    def _answer(self):
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait()
            self._fail('exited (status %s)' % self._proc.returncode)
        return json.loads(line)

    def spawn(self, name, target, args, pidfile, logfile):
        """Start service ``target`` with ``args``; returns its PID.  Waits
        for the preloader's imports the first time."""
        request = {'name': name, 'target': target,
                   'args': [str(a) for a in args],
                   'pidfile': str(pidfile), 'logfile': str(logfile)}
        with self._lock:
            if not self._ready:
                self._answer()
                self._ready = True
            try:
                self._proc.stdin.write(json.dumps(request) + '\n')
                self._proc.stdin.flush()
            except OSError:
                self._proc.wait()
                self._fail('exited (status %s)' % self._proc.returncode)
            reply = self._answer()
        if 'error' in reply:
            self._fail('could not start %s: %s' % (name, reply['error']))
        return reply['pid']

    def close(self, timeout=10):
        """Let the preloader go (its children run on)."""
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    if len(argv) != 2 or argv[1] not in FAMILIES:
        sys.stderr.write('usage: %s {%s}\n'
                         % (argv[0], ','.join(sorted(FAMILIES))))
        return 2
    sys.argv[:] = argv[:1]   # Nova's early parse reads --config-file here
    # Replies go to a descriptor of their own: whatever the imports print
    # lands in the log (stderr), not in the answers.
    replies = os.fdopen(os.dup(1), 'w')
    os.dup2(2, 1)
    status = serve(argv[1], sys.stdin, replies)
    sys.stderr.flush()
    # Tearing down an interpreter with two thousand modules takes a second
    # or two of CPU, and the bed waits for this process: skip it.
    os._exit(status)


if __name__ == '__main__':
    sys.exit(main())
