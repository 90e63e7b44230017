"""Loading transport drivers by name through the real entry points."""

import pytest

from overcloud_migrate.transports import base
from overcloud_migrate.transports import dtn
from overcloud_migrate.transports import glance
from overcloud_migrate.transports import sharedfs
from overcloud_migrate.transports import ssh


def test_names_lists_the_installed_drivers():
    assert {'dtn', 'glance', 'sharedfs', 'ssh'} <= set(base.names())
    assert base.names() == sorted(base.names())


@pytest.mark.parametrize('name, cls', [
    ('glance', glance.GlanceTransport),
    ('sharedfs', sharedfs.SharedfsTransport),
    ('ssh', ssh.SshTransport),
    ('dtn', dtn.DtnTransport),
])
def test_load_returns_the_driver(name, cls):
    driver = base.load(name)
    assert type(driver) is cls
    assert driver.name == name
    assert driver.capabilities


def test_load_passes_the_options():
    driver = base.load('ssh', host='u@h', directory='/srv/images',
                       port=2222, ssh_options=['Compression=no'])
    assert (driver.host, driver.directory, driver.port) == (
        'u@h', '/srv/images', 2222)
    assert driver.ssh_options == ['Compression=no']
    assert base.load('sharedfs', directory='/mnt/dtn', keep=True).keep


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(base.TransportError) as caught:
        base.load('carrier-pigeon')
    message = str(caught.value)
    assert "Unknown transport 'carrier-pigeon'" in message
    for name in ('dtn', 'glance', 'sharedfs', 'ssh'):
        assert name in message
