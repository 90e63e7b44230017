"""Version 1 of the ``openstack overcloud ...`` commands: one module per noun."""
