"""The plugins folder's ``.airflowignore`` keeps the package out of Airflow's plugin scan (it is imported as a library,
not file by file), and reading it warns of nothing (issue 9 §4: a ``GitWildMatchPattern`` deprecation warning in every
task log came from pathspec 1.x, which Airflow's glob syntax uses; requirements pin pathspec below 1)."""
from __future__ import annotations

import warnings
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def _scan() -> tuple[list[str], list[warnings.WarningMessage]]:
    from airflow._shared.module_loading import find_path_from_directory  # what the plugins manager calls

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        files = list(find_path_from_directory(PLUGINS, ".airflowignore", "glob"))
    return files, caught


def test_the_plugin_scan_skips_the_sync_package():
    files, _ = _scan()
    modules = [f for f in files if f.endswith(".py")]
    assert not [f for f in modules if "pogo_invoiced_sync" in f]
    assert (PLUGINS / "pogo_invoiced_sync" / "__init__.py").is_file()  # there is something to skip


def test_reading_the_plugins_airflowignore_raises_no_deprecation_warning():
    _, caught = _scan()
    assert [str(w.message) for w in caught] == []
