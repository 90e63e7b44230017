"""Run nova-compute with the test-bed driver importable as nova.virt.devcloud.

Nova loads ``compute_driver`` only from the ``nova.virt`` namespace; this
launcher registers :mod:`overcloud_devcloud.virt` there in ``sys.modules``
(nothing is written into site-packages) and hands over to nova-compute.

It also shortens two waits of nova-compute's start, which the bed's start
waits for (see :func:`tune_start`).
"""

import sys

# nova-compute pings nova-conductor before it starts; a ping sent before the
# conductor consumes its queue is lost, and Nova's first attempts wait 10 s
# each for an answer.  On a bed all services start at once, so the first
# ping was always lost: 10 s of every warm start.  Shorter attempts, as many
# more of them (then Nova's configured RPC timeout, as before).
CONDUCTOR_PING_TIMEOUT = 2
CONDUCTOR_PING_ATTEMPTS = 50
# Seconds from the start of the service (its RPC server consuming) to its
# first heartbeat, which the bed waits for as the proof of that; Nova's is 5.
# Later heartbeats keep their interval ([DEFAULT] report_interval).
INITIAL_REPORTING_DELAY = 0


def tune_start():
    """Apply CONDUCTOR_PING_* and INITIAL_REPORTING_DELAY to Nova's code
    (after Nova's concurrency mode is set)."""
    from nova.conductor import api as conductor_api
    from nova.servicegroup import api as servicegroup_api

    api = conductor_api.API
    wait = api.wait_until_ready

    def wait_until_ready(self, context, early_timeout=None,
                         early_attempts=None):
        return wait(self, context, early_timeout=CONDUCTOR_PING_TIMEOUT,
                    early_attempts=CONDUCTOR_PING_ATTEMPTS)

    if not getattr(wait, 'devcloud_tuned', False):
        wait_until_ready.devcloud_tuned = True
        api.wait_until_ready = wait_until_ready
    servicegroup_api.INITIAL_REPORTING_DELAY = INITIAL_REPORTING_DELAY


def main():
    from nova.cmd import compute  # first: sets Nova's concurrency mode

    from overcloud_devcloud import virt
    sys.modules['nova.virt.devcloud'] = virt
    tune_start()
    sys.argv[0] = 'nova-compute'
    return compute.main()


if __name__ == '__main__':
    sys.exit(main())
