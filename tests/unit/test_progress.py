import io

from overcloud_migrate.cli import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_no_bars_when_stderr_is_not_a_terminal():
    assert progress.bar_factory(io.StringIO()) is None


def test_bar_draws_percent_and_ends_the_line_when_done():
    out = Terminal()
    update = progress.bar_factory(out)('web')
    update(50, 100)
    update(100, 100)
    text = out.getvalue()
    assert '100.0%' in text and text.endswith('\n')
    assert text.startswith('\rweb')
