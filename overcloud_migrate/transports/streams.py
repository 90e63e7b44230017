"""Glance download and upload helpers shared by the staging drivers.

The drivers reach Glance through ``connection.image``: an openstacksdk
image proxy in production, a keystoneauth ``Adapter`` in the unit tests.
Both are keystoneauth adapters, but they disagree on the default of
``raise_exc`` (the SDK proxy returns error responses, a bare adapter raises
keystoneauth errors), so every call here passes ``raise_exc=False`` and
reads the status code itself: the behaviour is the same with either.
"""

import hashlib
import logging
import re

from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc
import requests

from overcloud_migrate.transports import base

LOG = logging.getLogger(__name__)

CHUNK = 1024 * 1024
_CALL_ERRORS = (ks_exc.ClientException, sdk_exc.SDKException,
                requests.RequestException)
#: errors while reading a streamed body (connection dropped, short read)
STREAM_ERRORS = (requests.RequestException, ks_exc.ClientException, OSError)
_CONTENT_RANGE = re.compile(r'^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$')


def _path(image_id):
    return '/images/%s/file' % image_id


def _reason(response):
    text = ''
    try:
        text = response.text.strip().replace('\n', ' ')[:200]
    except Exception:  # the body is only a hint; the status says enough
        pass
    return 'HTTP %d%s' % (response.status_code, ': ' + text if text else '')


def download(source, offset=0):
    """Open the source image's data, from byte ``offset`` when it is > 0.

    :returns: ``(response, start)``: ``start`` is the offset the body
        really begins at: ``offset`` when the server honoured the
        ``Range`` header (206 with a matching ``Content-Range``), else 0,
        and then the caller must start over instead of appending.
    """
    headers = {'Range': 'bytes=%d-' % offset} if offset else {}
    response = _get(source, headers)
    if offset:
        start = _range_start(response)
        if start == offset:
            return response, offset
        LOG.info('The source Glance did not resume image %s at byte %d '
                 '(HTTP %d); starting again from byte 0.',
                 source.id, offset, response.status_code)
        if response.status_code != 200:
            # 416 or a 206 for other bytes: ask again for the whole image.
            response.close()
            response = _get(source, {})
    if response.status_code != 200:
        response.close()
        raise base.TransportError(
            'Reading image %s from the source Glance failed: unexpected '
            'HTTP %d.' % (source.id, response.status_code))
    return response, 0


def _get(source, headers):
    try:
        response = source.connection.image.get(
            _path(source.id), stream=True, raise_exc=False, headers=headers)
    except _CALL_ERRORS as exc:
        raise base.TransportError('Reading image %s from the source Glance '
                                  'failed: %s' % (source.id, exc))
    if response.status_code == 204:
        response.close()
        raise base.TransportError('Image %s has no data in the source '
                                  'Glance.' % source.id)
    if response.status_code >= 400 and response.status_code != 416:
        reason = _reason(response)
        response.close()
        raise base.TransportError('Reading image %s from the source Glance '
                                  'failed: %s.' % (source.id, reason))
    return response


def _range_start(response):
    if response.status_code != 206:
        return None
    match = _CONTENT_RANGE.match(response.headers.get('Content-Range', ''))
    return int(match.group(1)) if match else None


def upload(dest, chunks, size=None):
    """PUT ``chunks`` (an iterable of bytes) as the destination image's data.

    With ``size`` (the byte count the chunks will add up to) the body is
    sent with a ``Content-Length``: Glance then reads it as a plain stream,
    about a third faster than chunked transfer encoding behind uWSGI (see
    benchmarks/migrate_transfer.py). Without it, the body is chunked.

    An exception raised by the iterable propagates as is, after the request
    was cut short, so Glance never sees a complete body: with a length, the
    last chunk is held back until the iterable has ended cleanly (its end
    is where :class:`VerifiedChunks` raises a hash mismatch).
    """
    body = _SizedBody(chunks, size, dest.id) if size else chunks
    try:
        response = dest.connection.image.put(
            _path(dest.id), data=body, raise_exc=False,
            headers={'Content-Type': 'application/octet-stream'})
    except base.TransportError:
        raise
    except _CALL_ERRORS as exc:
        raise base.TransportError('Writing image %s into the destination '
                                  'Glance failed: %s' % (dest.id, exc))
    if response.status_code >= 300:
        raise base.TransportError('Writing image %s into the destination '
                                  'Glance failed: %s.'
                                  % (dest.id, _reason(response)))
    return response


class _SizedBody:
    """An upload body of known length (``len()`` makes requests send a
    Content-Length) that never sends more or fewer bytes than announced and
    sends its last chunk only after the source iterable has ended."""

    def __init__(self, chunks, size, image_id):
        self._chunks = chunks
        self._size = size
        self._image_id = image_id

    def __len__(self):
        return self._size

    def __iter__(self):
        count = 0
        held = None
        for chunk in self._chunks:
            if not chunk:
                continue
            count += len(chunk)
            if count > self._size:
                raise base.TransportError(
                    'Image %s: the source gave more than the %d bytes '
                    'announced; the upload was cut short.'
                    % (self._image_id, self._size))
            if held is not None:
                yield held
            held = chunk
        if count != self._size:
            raise base.TransportError(
                'Image %s: the source ended after %d of %d bytes; the upload '
                'was cut short.' % (self._image_id, count, self._size))
        if held is not None:
            yield held


class VerifiedChunks:
    """Reads a staged copy back and checks it against the staging hash.

    Iterating yields ``read(CHUNK)`` blocks of ``read``; at the end, the
    sha512 of what was yielded must equal ``expected`` (and ``finish()``,
    when given, must not raise), or :class:`base.HashMismatch` is raised
    *before* the iterator ends, so an HTTP upload fed by it is cut short
    instead of completing with wrong bytes.
    """

    def __init__(self, read, expected, what, total=None, progress=None,
                 finish=None):
        # Not ``self.read``: urllib3 would read a body with a ``read``
        # attribute directly, bypassing the hash check.
        self._read = read
        self.expected = expected
        self.what = what
        self.total = total
        self.progress = progress
        self.finish = finish
        self.count = 0
        self.digest = hashlib.sha512()

    def __iter__(self):
        while True:
            chunk = self._read(CHUNK)
            if not chunk:
                break
            self.digest.update(chunk)
            self.count += len(chunk)
            if self.progress:
                self.progress(self.count, self.total)
            yield chunk
        if self.finish:
            self.finish()
        if self.digest.hexdigest() != self.expected:
            raise base.HashMismatch(
                'The staged copy of %s no longer matches what was read from '
                'the source Glance (sha512 %s..., expected %s...); it was '
                'not uploaded.' % (self.what, self.digest.hexdigest()[:16],
                                   self.expected[:16]))


def check_source(source, count, sha512):
    """Raise when ``count``/``sha512`` disagree with the source's size or
    sha512 ``os_hash_value`` (when Glance gave them)."""
    if source.size is not None and count != source.size:
        raise base.TransportError(
            'Image %s: read %d bytes from the source Glance, expected %d.'
            % (source.id, count, source.size))
    if (source.hash_value and (source.hash_algo or '').lower() == 'sha512'
            and sha512 != source.hash_value.lower()):
        raise base.HashMismatch(
            'Image %s: the sha512 of the staged copy (%s...) is not the '
            'source os_hash_value (%s...).'
            % (source.id, sha512[:16], source.hash_value[:16]))
