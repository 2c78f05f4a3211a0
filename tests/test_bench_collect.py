"""`make bench` rewrites only its own block of BENCHMARKS.md: the sections written by hand stay."""
from bench.__main__ import BEGIN, END, HEADER, merge_sections

HAND = "# Benchmarks\n\nintro\n\n## Hand section (issue 33)\n\nanalysis 1\n\n## Another\n\nanalysis 2\n"


def test_first_run_puts_its_block_after_the_header_and_keeps_every_hand_section():
    out = merge_sections(HAND, "## bench_a\n\nfigure 1\n")
    assert out.index("intro") < out.index(BEGIN) < out.index("figure 1") < out.index(END) < out.index("analysis 1")
    assert "analysis 1" in out and "analysis 2" in out


def test_a_later_run_replaces_only_its_block():
    once = merge_sections(HAND, "## bench_a\n\nfigure 1\n")
    twice = merge_sections(once, "## bench_a\n\nfigure 2\n")
    assert "figure 1" not in twice and "figure 2" in twice
    assert twice.count(BEGIN) == 1 and twice.count(END) == 1
    assert twice.replace("figure 2", "figure 1") == once


def test_an_empty_file_gets_the_header_and_the_block():
    out = merge_sections("", "## bench_a\n\nfigure\n")
    assert out.startswith(HEADER) and "figure" in out and out.rstrip().endswith(END)
