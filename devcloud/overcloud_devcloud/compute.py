"""Run nova-compute with the test-bed driver importable as nova.virt.devcloud.

Nova loads ``compute_driver`` only from the ``nova.virt`` namespace; this
launcher registers :mod:`overcloud_devcloud.virt` there in ``sys.modules``
(nothing is written into site-packages) and hands over to nova-compute.
"""

import sys


def main():
    from nova.cmd import compute  # first: sets Nova's concurrency mode

    from overcloud_devcloud import virt
    sys.modules['nova.virt.devcloud'] = virt
    sys.argv[0] = 'nova-compute'
    return compute.main()


if __name__ == '__main__':
    sys.exit(main())
