"""devcloud: two real OpenStack control planes on loopback, for testing.

A test bed for overcloud-migrate; never shipped with the plugin.
"""
