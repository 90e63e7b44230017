"""overcloud-migrate: an OpenStackClient plugin that moves running services
between OpenStack clouds over Data Transfer Nodes (DTNs)."""

import importlib.metadata

try:
    __version__ = importlib.metadata.version('overcloud-migrate')
except importlib.metadata.PackageNotFoundError:
    # Not installed (e.g. imported straight from a source checkout).
    __version__ = '0.0.0'
