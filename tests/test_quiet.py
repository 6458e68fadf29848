"""TensorFlow's captured log, shown under -v: each start-up message once."""

from __future__ import annotations

from nandoc.quiet import distinct_lines

LOG = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796152543.082798    3532 port.cc:153] oneDNN custom operations are on.
I0000 00:00:1796152543.084338    3532 cudart_stub.cc:31] Could not find cuda drivers.
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796152565.083236    3532 port.cc:153] oneDNN custom operations are on.
I0000 00:00:1796152565.084005    3532 cudart_stub.cc:31] Could not find cuda drivers.
W0000 00:00:1796152566.000001    3532 op_kernel.cc:1] a different message
"""


def test_the_log_keeps_each_message_once_in_order():
    lines = distinct_lines(LOG).splitlines()
    assert [ln.split("] ")[-1] for ln in lines] == [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "oneDNN custom operations are on.", "Could not find cuda drivers.",
        "a different message"]
    assert lines[1].startswith("I0000 00:00:1796152543.082798")  # the first one is kept


def test_blank_lines_and_a_log_without_repeats_are_left_alone():
    text = "one\n\n\ntwo\n"
    assert distinct_lines(text) == text and distinct_lines("") == ""
