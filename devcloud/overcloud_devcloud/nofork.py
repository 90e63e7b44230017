"""Run nova-conductor or nova-scheduler in one process, as nova-compute runs.

Under oslo.service's threading backend a service started with one worker
still forks: a master that only waits for its worker, each holding its own
copy of every import (about 120 MiB of RSS apiece). nova-compute asks for
``no_fork``; this launcher makes nova-conductor and nova-scheduler ask for
it too, and hands over to their own ``main()``.

    python -m overcloud_devcloud.nofork nova-conductor --config-file ...
"""

import importlib
import sys

COMMANDS = {'nova-conductor': 'nova.cmd.conductor',
            'nova-scheduler': 'nova.cmd.scheduler'}


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] not in COMMANDS:
        sys.stderr.write('usage: %s {%s} [options]\n'
                         % (argv[0], ','.join(sorted(COMMANDS))))
        return 2
    name = argv[1]
    command = importlib.import_module(COMMANDS[name])  # first: Nova's mode
    from nova import service

    serve = service.serve

    def serve_in_process(server, workers=None, no_fork=False):
        return serve(server, workers=1, no_fork=True)

    service.serve = serve_in_process
    sys.argv[:] = [name] + argv[2:]
    return command.main()


if __name__ == '__main__':
    sys.exit(main())
