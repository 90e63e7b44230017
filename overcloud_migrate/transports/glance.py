"""``glance``: stream the source download straight into the destination.

One pass, no staging disk, memory bounded by one chunk; the sha512 is
computed on the way and compared with the source's ``os_hash_value``.
"""

import time

from openstack import exceptions as sdk_exc

from overcloud_migrate.transports import base

CHUNK = 1024 * 1024


class GlanceTransport(base.Transport):
    name = 'glance'
    capabilities = frozenset({'streaming'})

    def check(self):
        # Needs nothing but the two Glance APIs, which prechecks reach.
        return None

    def transfer(self, source, dest, progress):
        start = time.monotonic()
        try:
            response = source.connection.image.get(
                '/images/%s/file' % source.id, stream=True)
        except sdk_exc.SDKException as exc:
            raise base.TransportError('Reading image %s from the source '
                                      'Glance failed: %s' % (source.id, exc))
        reader = base.HashingReader(response.iter_content(CHUNK),
                                    source.size, progress)
        try:
            dest.connection.image.put(
                '/images/%s/file' % dest.id, data=iter(reader),
                headers={'Content-Type': 'application/octet-stream'})
        except sdk_exc.SDKException as exc:
            raise base.TransportError('Writing image %s into the destination '
                                      'Glance failed: %s' % (dest.id, exc))
        finally:
            response.close()
        return base.Result(reader.count, time.monotonic() - start,
                           reader.sha512)
