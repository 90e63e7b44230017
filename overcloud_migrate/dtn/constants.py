"""Names the DTN service, its movers, its client and the plugin share.

Defined here once; the plugin side (``transports/dtn.py``, the ``overcloud
dtn`` commands) imports them from here.  Dependency-free, like the rest of
:mod:`overcloud_migrate.dtn`.
"""

#: environment variable holding the DTN API token for clients
TOKEN_ENV = 'OVERCLOUD_MIGRATE_DTN_TOKEN'
#: HTTP header carrying the DTN API token
TOKEN_HEADER = 'X-Auth-Token'
#: most parallel streams one transfer may use (API, movers, CLI)
MAX_STREAMS = 64
#: the longest a ``GET /v1/transfers/<id>?wait=`` request is held (seconds)
MAX_WAIT = 10

#: what a sync key may be (also a file name part on both DTNs)
SYNC_KEY_PATTERN = r'^[A-Za-z0-9._-]{1,128}$'
