"""The benchmark runner's report: a re-run replaces only its scripts' blocks, never the notes written around them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import __main__ as runner

ROOT = Path(__file__).resolve().parents[1]


def test_update_replaces_only_the_named_block_and_keeps_the_notes_around_it() -> None:
    report = (
        runner.block("header", "# Benchmarks\n\nold date")
        + "\n"
        + runner.block("bench_a", "## A\n\n| x |\n| 1 |")
        + "\nA note under A's table, written by hand.\n\n## A study (hand-written)\n\ntext\n\n"
        + runner.block("bench_b", "## B\n\n| y |")
    )
    updated = runner.update(report, {"bench_a": "## A\n\n| x |\n| 2 |", "header": "# Benchmarks\n\nnew date"})
    assert "| 2 |" in updated and "| 1 |" not in updated and "new date" in updated and "old date" not in updated
    for kept in ("A note under A's table, written by hand.", "## A study (hand-written)\n\ntext", "## B\n\n| y |"):
        assert kept in updated
    assert runner.update(updated, {"bench_a": "## A\n\n| x |\n| 2 |"}) == updated  # the same table: no change
    added = runner.update(updated, {"bench_c": "## C"})
    assert added.startswith(updated.rstrip("\n")) and added.endswith(runner.block("bench_c", "## C"))


def test_the_runner_rewrites_a_scripts_block_in_a_copy_of_the_report_and_keeps_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`main --only bench_signature --out COPY` on a copy of BENCHMARKS.md (the script's run stubbed: what is under
    test is the report): its block holds the new table, and every other line of the report is still there."""
    text = (ROOT / "BENCHMARKS.md").read_text()
    assert "<!-- bench:header -->" in text and "<!-- bench:bench_signature -->" in text
    copy = tmp_path / "BENCHMARKS.md"
    copy.write_text(text)
    monkeypatch.setattr(runner, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(runner, "_run", lambda name: (f"## {name}\n\n| fresh table |\n", True))
    assert runner.main(["--only", "bench_signature", "--out", str(copy)]) == 0
    updated = copy.read_text()
    assert runner.block("bench_signature", "## bench_signature\n\n| fresh table |") in updated
    assert (tmp_path / "results" / "bench_signature.md").read_text() == "## bench_signature\n\n| fresh table |\n"
    before = runner.update(text, {"header": "", "bench_signature": ""})
    assert runner.update(updated, {"header": "", "bench_signature": ""}) == before  # nothing else moved
    assert "Models from `make models`" in updated  # the hand-written note under the signature table


def test_fresh_drops_the_notes(tmp_path: Path) -> None:
    copy = tmp_path / "BENCHMARKS.md"
    copy.write_text(runner.block("bench_a", "## A") + "\nhand note\n")
    assert runner.main(["--only", "none", "--fresh", "--out", str(copy)]) == 0
    assert "hand note" not in copy.read_text() and "<!-- bench:header -->" in copy.read_text()


def test_saved_puts_a_tables_own_run_into_its_block_without_running_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--saved NAME`: the table a script wrote with arguments of its own goes into NAME's block; nothing runs."""
    copy = tmp_path / "BENCHMARKS.md"
    copy.write_text(runner.block("bench_a", "## A\n\nold") + "\nnote\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "bench_a.md").write_text("## A\n\nCommand: `python -m bench.bench_a --big`\n\nnew\n")
    monkeypatch.setattr(runner, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(runner, "_run", lambda name: pytest.fail(f"{name} was run"))
    assert runner.main(["--saved", "bench_a", "--out", str(copy)]) == 0
    text = copy.read_text()
    assert "--big`\n\nnew" in text and "old" not in text and "\nnote\n" in text
    with pytest.raises(SystemExit):
        runner.main(["--saved", "bench_missing", "--out", str(copy)])
