"""A throwaway sshd on a loopback port, for the benchmarks' scp steps.

Its own host and client keys in a temporary directory, key login only,
nothing in /etc/ssh or ~/.ssh touched. Needs root (sshd's privilege
separation) and openssh-server/openssh-client.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def sshd():
    """Yields the argv prefix of an ``scp`` to this sshd: append the
    source and ``root@127.0.0.1:<target>``."""
    for tool in ('sshd', 'scp', 'ssh-keygen'):
        if not (shutil.which(tool) or os.path.exists('/usr/sbin/' + tool)):
            raise RuntimeError('%s is missing (openssh-server, '
                               'openssh-client)' % tool)
    with tempfile.TemporaryDirectory(prefix='om-bench-sshd-') as work:
        for key in ('host', 'client'):
            subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '',
                            '-f', os.path.join(work, key)], check=True)
        shutil.copy(os.path.join(work, 'client.pub'),
                    os.path.join(work, 'authorized_keys'))
        port = _free_port()
        config = os.path.join(work, 'sshd_config')
        with open(config, 'w') as handle:
            handle.write('\n'.join([
                'Port %d' % port, 'ListenAddress 127.0.0.1',
                'HostKey %s' % os.path.join(work, 'host'),
                'AuthorizedKeysFile %s' % os.path.join(work,
                                                       'authorized_keys'),
                'PidFile %s' % os.path.join(work, 'sshd.pid'),
                'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
                'UsePAM no', 'StrictModes no',
                'PermitRootLogin prohibit-password',
                'Subsystem sftp internal-sftp', '']))
        os.makedirs('/run/sshd', mode=0o755, exist_ok=True)
        binary = shutil.which('sshd') or '/usr/sbin/sshd'
        proc = subprocess.Popen([binary, '-D', '-e', '-f', config],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(('127.0.0.1', port), 1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError('the throwaway sshd did not start')
                    time.sleep(0.1)
            yield ['scp', '-q', '-i', os.path.join(work, 'client'),
                   '-P', str(port), '-o', 'BatchMode=yes',
                   '-o', 'StrictHostKeyChecking=no',
                   '-o', 'UserKnownHostsFile=/dev/null',
                   '-o', 'LogLevel=ERROR']
        finally:
            proc.terminate()
            proc.wait(timeout=10)
