"""Fixtures for functional tests: a running devcloud and clean-up stacks."""

import os

import openstack
import pytest

from overcloud_devcloud import bed as bed_mod
from overcloud_devcloud import scenario

KEEP_ENV = 'OVERCLOUD_DEVCLOUD_KEEP'
#: what the README's demo (tools/demo.sh) builds and migrates in this bed
DEMO_PREFIX = '3t'


@pytest.fixture(scope='session')
def devcloud():
    """The two-cloud test bed: reused when running, else brought up.

    A bed this fixture started is stopped at the end of the session (its
    data is kept, so the next start is warm) unless OVERCLOUD_DEVCLOUD_KEEP=1.
    """
    bed = bed_mod.Bed()
    started = not bed.is_up()
    if started:
        bed.up()
    os.environ.update(bed.environment())
    # The demo shares the bed and leaves its project in both clouds; the
    # tests count servers and quotas, so they start without it.
    for name in ('devcloud-a', 'devcloud-b'):
        connection = openstack.connect(cloud=name)
        try:
            scenario.delete(connection, DEMO_PREFIX)
        finally:
            connection.close()
    yield bed
    if started and os.environ.get(KEEP_ENV) != '1':
        bed.down()


@pytest.fixture(params=['devcloud-a', 'devcloud-b'])
def cloud_name(request):
    return request.param


@pytest.fixture
def conn(devcloud, cloud_name):
    """An admin connection (project demo) to one cloud of the bed."""
    connection = openstack.connect(cloud=cloud_name)
    yield connection
    connection.close()


@pytest.fixture
def cleanup():
    """Register a clean-up right after each create; run in reverse order."""
    stack = []
    yield stack.append
    errors = []
    for action in reversed(stack):
        try:
            action()
        except Exception as exc:  # keep cleaning; report at the end
            errors.append(exc)
    if errors:
        raise errors[0]
