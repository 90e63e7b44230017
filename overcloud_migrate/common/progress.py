"""Progress on standard error: one-line messages, and transfer bars only
when it is a terminal."""

import sys
import threading
import time

_LOCK = threading.Lock()


def bar_factory(stream=None):
    """A ``label -> callback(done, total)`` factory, or None off a TTY."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return None

    def make(label):
        start = time.monotonic()
        last = [0.0]

        def update(done, total):
            now = time.monotonic()
            if now - last[0] < 0.2 and (not total or done < total):
                return
            last[0] = now
            rate = done / 1e6 / max(now - start, 1e-6)
            if total:
                width = 30
                filled = int(width * done / total)
                text = '\r%-20s [%s%s] %5.1f%% %7.1f MB/s' % (
                    label[:20], '#' * filled, '.' * (width - filled),
                    100.0 * done / total, rate)
            else:
                text = '\r%-20s %10.1f MB %7.1f MB/s' % (label[:20],
                                                         done / 1e6, rate)
            with _LOCK:
                stream.write(text + ('\n' if total and done >= total
                                     else ''))
                stream.flush()
        return update
    return make


def say(message, stream=None):
    """One line of progress or a warning on standard error (stdout carries
    only the result, so ``-f json`` stays parseable)."""
    stream = stream or sys.stderr
    with _LOCK:
        print(message, file=stream, flush=True)
