"""Transport drivers: how an image crosses from one Glance to the other.

Loaded through stevedore from the ``overcloud_migrate.transports``
namespace; the contract is :class:`overcloud_migrate.transports.base.Transport`.
"""
