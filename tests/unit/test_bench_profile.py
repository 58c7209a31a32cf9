"""Issue #19, item 5: `make bench --profile --output X` replaces only X's own stacks files,
never the profiles of other runs beside X."""

from __future__ import annotations

import shutil

from bench import profile


def test_profile_replaces_only_its_own_stacks(tmp_path, monkeypatch):
    """Stacks are named after the results file; an earlier run of the same file is replaced,
    another results file's stacks (and the old unprefixed name) are kept."""
    monkeypatch.setattr(profile, "py_spy", lambda: shutil.which("true"))
    monkeypatch.setattr(profile, "worker_pids", lambda master: [4242])
    mine_before = tmp_path / "run-a.profile-ours-1.txt"
    theirs = tmp_path / "run-b.profile-ours-2.txt"
    older = tmp_path / "profile-ours-3.txt"
    for path in (mine_before, theirs, older):
        path.write_text("stack 1\n")
    recorders = profile.start(1, 1, tmp_path / "run-a.json")
    for process, _ in recorders:
        process.communicate(timeout=30)
    assert [path.name for _, path in recorders] == ["run-a.profile-ours-4242.txt"]
    assert not mine_before.exists()
    assert theirs.exists() and older.exists()


def test_profile_output_names_are_not_glob_patterns(tmp_path, monkeypatch):
    """`--output 'run[1].json'` replaces run[1]'s stacks only: run1.json's (which the name,
    read as a glob pattern, matches) and a.profile-ours-b.json's are another run's."""
    monkeypatch.setattr(profile, "py_spy", lambda: shutil.which("true"))
    monkeypatch.setattr(profile, "worker_pids", lambda master: [4242])
    mine_before = tmp_path / "run[1].profile-ours-1.txt"
    theirs = tmp_path / "run1.profile-ours-2.txt"
    nested = tmp_path / "run[1].profile-ours-b.profile-ours-3.txt"
    for path in (mine_before, theirs, nested):
        path.write_text("stack 1\n")
    recorders = profile.start(1, 1, tmp_path / "run[1].json")
    for process, _ in recorders:
        process.communicate(timeout=30)
    assert [path.name for _, path in recorders] == ["run[1].profile-ours-4242.txt"]
    assert not mine_before.exists()
    assert theirs.exists() and nested.exists()
