"""Issue #19, item 5: `make bench --profile --output X` replaces only X's own stacks files,
never the profiles of other runs beside X."""

from __future__ import annotations

import shutil

import pytest

from bench import profile


@pytest.mark.parametrize(
    ("output", "mine_before", "others"),
    [
        # An earlier run of the same results file is replaced; another results file's stacks
        # and the old unprefixed name are kept.
        ("run-a", "run-a.profile-ours-1.txt", ["run-b.profile-ours-2.txt", "profile-ours-3.txt"]),
        # The output's name is not a glob pattern: run[1]'s stacks only, not run1's (which
        # the name, read as a pattern, matches) nor a name that merely contains it.
        (
            "run[1]",
            "run[1].profile-ours-1.txt",
            ["run1.profile-ours-2.txt", "run[1].profile-ours-b.profile-ours-3.txt"],
        ),
    ],
)
def test_profile_replaces_only_its_own_stacks(tmp_path, monkeypatch, output, mine_before, others):
    """Stacks are named `<output stem>.profile-<row>-<pid>.txt`; only this output's go."""
    monkeypatch.setattr(profile, "py_spy", lambda: shutil.which("true"))
    monkeypatch.setattr(profile, "worker_pids", lambda master: [4242])
    for name in (mine_before, *others):
        (tmp_path / name).write_text("stack 1\n")
    recorders = profile.start(1, 1, tmp_path / f"{output}.json")
    for process, _ in recorders:
        process.communicate(timeout=30)
    assert [path.name for _, path in recorders] == [f"{output}.profile-ours-4242.txt"]
    assert not (tmp_path / mine_before).exists()
    assert all((tmp_path / name).exists() for name in others)
