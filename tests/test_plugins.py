"""Plugin manager: builtin, entry points, local plugins/*.py, -p; every failure a PluginError."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from litmus_seq.drivers.registry import collect_drivers
from litmus_seq.errors import PluginError
from litmus_seq.plugins import get_plugin_manager, plugin_info

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGIN = REPO / "plugins" / "litmus-seq-example-plugin"


def example_package(site: Path) -> Path:
    """A copy of the example package's module in ``site`` (never the source folder: an earlier
    ``pip install`` may have left build files there that look like an installed distribution)."""
    import shutil

    shutil.copytree(EXAMPLE_PLUGIN / "litmus_seq_example_plugin", site / "litmus_seq_example_plugin",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return site


@pytest.fixture(autouse=True)
def _isolated_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """get_plugin_manager puts the project root on sys.path; undo that after each test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "plugins").mkdir(parents=True)
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def fake_dist(site: Path, dist: str, version: str, entry_points: dict[str, str]) -> None:
    """A ``*.dist-info`` with entry_points.txt: what pip leaves behind, without installing."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[litmus_seq]\n{lines}")


def info_by_name(pm) -> dict[str, dict]:
    return {row["name"]: row for row in plugin_info(pm)}


# --------------------------------------------------------------------------- builtin


def test_builtin_drivers_are_registered_by_the_builtin_plugin() -> None:
    pm = get_plugin_manager(entry_points=False)
    rows = info_by_name(pm)
    assert rows["litmus_seq.drivers"]["source"] == "builtin"
    assert rows["litmus_seq.drivers"]["hooks"] == ["litmus_seq_identify_driver", "litmus_seq_register_drivers"]
    reg = collect_drivers(pm)
    assert {"mock", "scpi.dmm", "scpi.psu", "scpi.eload"} <= set(reg.names())
    assert reg.owner("scpi.psu") == "litmus_seq.drivers"


def test_every_call_builds_a_fresh_manager() -> None:
    assert get_plugin_manager(entry_points=False) is not get_plugin_manager(entry_points=False)


def test_block_builtin_with_no_prefix() -> None:
    pm = get_plugin_manager(entry_points=False, extra=["no:litmus_seq.drivers"])
    assert collect_drivers(pm).names() == []


# --------------------------------------------------------------------------- local plugins


def test_local_plugin_is_loaded_and_can_import_project_helpers(project: Path) -> None:
    write(project / "benchlib" / "__init__.py", "GAIN = 2.5\n")
    write(
        project / "plugins" / "acme.py",
        """
        from benchlib import GAIN
        from litmus_seq import hookimpl

        class AcmeMeter:
            gain = GAIN
            def __init__(self, resource=None, settings=None): ...

        @hookimpl
        def litmus_seq_register_drivers(registry):
            registry.register("acme.meter", AcmeMeter)
        """,
    )
    pm = get_plugin_manager(project_root=project, entry_points=False)
    row = info_by_name(pm)["plugins/acme.py"]
    assert row["source"] == "local"
    assert row["file"] == str((project / "plugins" / "acme.py").resolve())
    assert row["hooks"] == ["litmus_seq_register_drivers"]
    reg = collect_drivers(pm)
    assert reg.owner("acme.meter") == "plugins/acme.py"
    assert reg.get("acme.meter").gain == 2.5
    assert str(project.resolve()) in sys.path


def test_same_file_loaded_twice_gives_the_same_classes(project: Path) -> None:
    write(
        project / "plugins" / "p.py",
        """
        from litmus_seq import hookimpl
        class D: ...
        @hookimpl
        def litmus_seq_register_drivers(registry):
            registry.register("p.d", D)
        """,
    )
    first = collect_drivers(get_plugin_manager(project_root=project, entry_points=False)).get("p.d")
    second = collect_drivers(get_plugin_manager(project_root=project, entry_points=False)).get("p.d")
    assert first is second


def test_undecorated_hook_function_is_picked_up(project: Path) -> None:
    write(
        project / "plugins" / "listener.py",
        """
        SEEN = []
        def litmus_seq_event(event):
            SEEN.append(event["event_type"])
        """,
    )
    pm = get_plugin_manager(project_root=project, entry_points=False)
    pm.hook.litmus_seq_event(event={"event_type": "run.started"})
    module = pm.get_plugin("plugins/listener.py")
    assert module.SEEN == ["run.started"]


def test_subfolders_and_private_files_are_not_local_plugins(project: Path) -> None:
    hook = """
    from litmus_seq import hookimpl
    @hookimpl
    def litmus_seq_register_drivers(registry):
        registry.register("{name}", object)
    """
    write(project / "plugins" / "pkg" / "pkg_mod" / "__init__.py", hook.format(name="sub.folder"))
    write(project / "plugins" / "pkg" / "top.py", hook.format(name="sub.top"))
    write(project / "plugins" / "_helper.py", hook.format(name="private.helper"))
    reg = collect_drivers(get_plugin_manager(project_root=project, entry_points=False))
    assert not {"sub.folder", "sub.top", "private.helper"} & set(reg.names())


def test_local_plugin_import_error_names_file_and_line(project: Path) -> None:
    write(project / "plugins" / "broken.py", "import os\nimport litmus_no_such_module\n")
    with pytest.raises(PluginError) as info:
        get_plugin_manager(project_root=project, entry_points=False)
    line = info.value.lines()[0]
    assert line.startswith("plugins/broken.py:2: ")
    assert "No module named 'litmus_no_such_module'" in line
    assert "install the missing package" in line
    assert "litmus_no_such_module" not in sys.modules


def test_local_plugin_syntax_error_names_line_and_column(project: Path) -> None:
    write(project / "plugins" / "typo.py", "x = 1\ndef f(:\n    pass\n")
    with pytest.raises(PluginError) as info:
        get_plugin_manager(project_root=project, entry_points=False)
    line = info.value.lines()[0]
    assert line.startswith("plugins/typo.py:2:7: ")
    assert "syntax error" in line


def test_local_plugin_exception_at_import(project: Path) -> None:
    write(project / "plugins" / "boom.py", "A = 1\n\nraise RuntimeError('no licence key')\n")
    with pytest.raises(PluginError) as info:
        get_plugin_manager(project_root=project, entry_points=False)
    assert info.value.lines()[0].startswith("plugins/boom.py:3: ")
    assert "RuntimeError: no licence key" in str(info.value)


def test_misspelled_hook_is_an_error_with_a_suggestion(project: Path) -> None:
    write(
        project / "plugins" / "listener.py",
        """
        from litmus_seq import hookimpl

        @hookimpl
        def litmus_seq_evnt(event):
            pass
        """,
    )
    with pytest.raises(PluginError) as info:
        get_plugin_manager(project_root=project, entry_points=False)
    line = info.value.lines()[0]
    assert line.startswith("plugins/listener.py:3: ")
    assert "unknown hook 'litmus_seq_evnt'" in line
    assert "did you mean 'litmus_seq_event'" in line


def test_undecorated_misspelled_hook_is_caught_too(project: Path) -> None:
    write(project / "plugins" / "l.py", "def litmus_seq_session_strat(session):\n    pass\n")
    with pytest.raises(PluginError, match="did you mean 'litmus_seq_session_start'"):
        get_plugin_manager(project_root=project, entry_points=False)


def test_hook_with_wrong_argument_is_an_error(project: Path) -> None:
    write(
        project / "plugins" / "bad_args.py",
        """
        from litmus_seq import hookimpl
        @hookimpl
        def litmus_seq_event(evt):
            pass
        """,
    )
    with pytest.raises(PluginError) as info:
        get_plugin_manager(project_root=project, entry_points=False)
    line = info.value.lines()[0]
    assert line.startswith("plugins/bad_args.py:2: hook litmus_seq_event(evt) asks for 'evt'")
    assert "its arguments are (event)" in line


def test_local_plugin_duplicating_a_builtin_driver_names_both(project: Path) -> None:
    write(
        project / "plugins" / "mymock.py",
        """
        from litmus_seq import hookimpl
        class M: ...
        @hookimpl
        def litmus_seq_register_drivers(registry):
            registry.register("mock", M)
        """,
    )
    pm = get_plugin_manager(project_root=project, entry_points=False)
    with pytest.raises(PluginError) as info:
        collect_drivers(pm)
    message = str(info.value)
    assert "'litmus_seq.drivers'" in message and "'plugins/mymock.py'" in message


def test_exception_in_register_names_the_local_file_and_line(project: Path) -> None:
    write(
        project / "plugins" / "raiser.py",
        """
        from litmus_seq import hookimpl
        @hookimpl
        def litmus_seq_register_drivers(registry):
            raise KeyError("VENDOR_HOME")
        """,
    )
    pm = get_plugin_manager(project_root=project, entry_points=False)
    with pytest.raises(PluginError) as info:
        collect_drivers(pm)
    assert "plugins/raiser.py:4" in str(info.value)
    assert "KeyError" in str(info.value)


def test_local_plugin_can_be_blocked(project: Path) -> None:
    write(project / "plugins" / "broken.py", "import litmus_no_such_module\n")
    pm = get_plugin_manager(project_root=project, entry_points=False, extra=["no:plugins/broken.py"])
    assert "plugins/broken.py" not in info_by_name(pm)


# --------------------------------------------------------------------------- -p


def test_cmdline_module_and_file(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"litmus_test_plugin_{uuid.uuid4().hex[:8]}"
    site = tmp_path / "site"
    write(
        site / f"{name}.py",
        """
        from litmus_seq import hookimpl
        @hookimpl
        def litmus_seq_register_drivers(registry):
            registry.register("cmd.module", object)
        """,
    )
    write(
        project / "extra" / "tool.py",
        """
        def litmus_seq_register_drivers(registry):
            registry.register("cmd.file", object)
        """,
    )
    monkeypatch.syspath_prepend(str(site))
    pm = get_plugin_manager(project_root=project, entry_points=False, extra=[name, "extra/tool.py"])
    rows = info_by_name(pm)
    assert rows[name]["source"] == "cmdline"
    assert rows["extra/tool.py"]["source"] == "cmdline"
    reg = collect_drivers(pm)
    assert reg.owner("cmd.module") == name
    assert reg.owner("cmd.file") == "extra/tool.py"
    monkeypatch.delitem(sys.modules, name)


def test_cmdline_unknown_module_is_plugin_error() -> None:
    with pytest.raises(PluginError) as info:
        get_plugin_manager(entry_points=False, extra=["litmus_no_such_plugin"])
    assert "-p litmus_no_such_plugin" in str(info.value)
    assert "check the spelling" in str(info.value)


def test_cmdline_missing_file_is_plugin_error(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="file not found"):
        get_plugin_manager(entry_points=False, extra=[str(tmp_path / "nope.py")])


# --------------------------------------------------------------------------- entry points


def test_entry_point_of_the_example_package_is_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    fake_dist(site, "litmus-seq-example-plugin", "0.1.0", {"litmus-seq-example-plugin": "litmus_seq_example_plugin"})
    monkeypatch.syspath_prepend(str(example_package(site)))
    pm = get_plugin_manager()
    row = info_by_name(pm)["litmus-seq-example-plugin"]
    assert row["source"] == "entrypoint"
    assert (row["dist"], row["version"], row["entry_point"]) == ("litmus-seq-example-plugin", "0.1.0", "litmus_seq_example_plugin")
    assert row["file"].endswith("litmus_seq_example_plugin/__init__.py")
    reg = collect_drivers(pm)
    assert reg.owner("example.noisy_dmm") == "litmus-seq-example-plugin"
    assert get_plugin_manager(entry_points=False).get_plugin("litmus-seq-example-plugin") is None


def test_two_distributions_with_one_entry_point_name_names_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    fake_dist(site, "acme-drivers", "1.0", {"drivers": "acme_drivers"})
    fake_dist(site, "globex-drivers", "2.3", {"drivers": "globex_drivers"})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(PluginError) as info:
        get_plugin_manager()
    message = str(info.value)
    assert "'drivers'" in message
    assert "acme-drivers 1.0" in message and "globex-drivers 2.3" in message


def test_broken_entry_point_names_entry_point_and_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    fake_dist(site, "litmus-seq-broken", "0.3", {"litmus-seq-broken": "litmus_seq_broken_missing_module"})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(PluginError) as info:
        get_plugin_manager()
    message = str(info.value)
    assert "'litmus-seq-broken'" in message and "litmus-seq-broken 0.3" in message
    assert "ModuleNotFoundError" in message
    assert "-p no:litmus-seq-broken" in message
    # and the way out the message offers works
    pm = get_plugin_manager(extra=["no:litmus-seq-broken"])
    assert "litmus-seq-broken" not in info_by_name(pm)


def test_installed_plugins_are_read_once_until_something_is_installed(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading every distribution's metadata costs ~3 ms a session: it is done again only when
    ``sys.path`` or one of its folders changes, so a plugin installed meanwhile is still found."""
    from importlib import metadata

    site = tmp_path / "site"
    write(site / "litmus_seq_probe_plugin.py", "def litmus_seq_register_drivers(registry):\n    pass\n")
    monkeypatch.syspath_prepend(str(site))
    calls = []
    real = metadata.entry_points
    monkeypatch.setattr(metadata, "entry_points", lambda **kw: calls.append(kw) or real(**kw))
    assert get_plugin_manager().get_plugin("litmus-seq-probe-plugin") is None
    get_plugin_manager()
    assert len(calls) == 1
    fake_dist(site, "litmus-seq-probe-plugin", "0.1.0", {"litmus-seq-probe-plugin": "litmus_seq_probe_plugin"})
    assert get_plugin_manager().get_plugin("litmus-seq-probe-plugin") is not None
    assert len(calls) == 2


def test_entry_points_false_skips_installed_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    fake_dist(site, "litmus-seq-broken", "0.3", {"litmus-seq-broken": "litmus_seq_broken_missing_module"})
    monkeypatch.syspath_prepend(str(site))
    get_plugin_manager(entry_points=False)  # does not raise: the broken plugin is never touched


def test_plugin_info_is_json_ready(project: Path) -> None:
    import json

    write(project / "plugins" / "x.py", "def litmus_seq_session_start(session):\n    pass\n")
    rows = plugin_info(get_plugin_manager(project_root=project, entry_points=False))
    assert [r["source"] for r in rows] == ["builtin", "local"]
    assert json.loads(json.dumps(rows)) == rows
    assert set(rows[0]) == {"name", "source", "module", "file", "dist", "version", "entry_point", "hooks"}


def test_entry_point_plugin_with_misspelled_hook_names_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    module = f"litmus_ep_typo_{uuid.uuid4().hex[:8]}"
    write(site / f"{module}.py", "def litmus_seq_register_driver(registry):\n    pass\n")
    fake_dist(site, "litmus-seq-typo", "1.2", {"litmus-seq-typo": module})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(PluginError) as info:
        get_plugin_manager()
    line = info.value.lines()[0]
    assert line.startswith(f"{(site / f'{module}.py').resolve()}:1: ")
    assert "entry point" in line and "litmus-seq-typo 1.2" in line
    assert "did you mean 'litmus_seq_register_drivers'" in line
    monkeypatch.delitem(sys.modules, module)


def test_direct_caller_matches_the_hook_and_follows_registrations() -> None:
    """The event bus's dispatch: same order and arguments as pluggy, new plugins picked up."""
    from litmus_seq.hookspecs import hookimpl
    from litmus_seq.plugins import direct_caller

    pm = get_plugin_manager(project_root=None, entry_points=False)  # installed listeners take dicts
    seen: list[tuple[str, object]] = []

    class First:
        @hookimpl
        def litmus_seq_events(self, events: list) -> None:
            seen.append(("first", len(events)))

    class Second:
        @hookimpl
        def litmus_seq_events(self) -> None:  # pluggy lets an implementation take fewer arguments
            seen.append(("second", None))

    class Wrapper:
        @hookimpl(wrapper=True)
        def litmus_seq_events(self, events: list):  # type: ignore[no-untyped-def]
            seen.append(("wrapper", len(events)))
            return (yield)

    call = direct_caller(pm.hook.litmus_seq_events)
    call(events=[1])  # nobody subscribed: nothing happens
    assert seen == []
    pm.register(First(), name="first")
    pm.register(Second(), name="second")
    call(events=[1, 2])
    direct = list(seen)
    seen.clear()
    pm.hook.litmus_seq_events(events=[1, 2])
    assert direct == seen == [("second", None), ("first", 2)]  # pluggy's order: last registered first
    seen.clear()
    wrapper = Wrapper()
    pm.register(wrapper, name="wrapper")
    call(events=[1, 2, 3])  # a wrapper needs pluggy's machinery: the caller hands over to the hook
    assert seen == [("wrapper", 3), ("second", None), ("first", 3)]
    seen.clear()
    pm.unregister(wrapper)
    call(events=[7])
    assert seen == [("second", None), ("first", 1)]


# --------------------------------------------------------------------------- run options


OPTIONS_PLUGIN = '''\
from pathlib import Path

from litmus_seq import hookimpl


@hookimpl
def litmus_seq_add_options(parser):
    parser.addoption("--soak-s", type=float, default=60.0, help="soak time")


@hookimpl
def litmus_seq_session_start(session):
    Path("soak.txt").write_text(repr(session.options["soak_s"]))
'''


def test_plugin_options_of_run_reach_the_session_and_mistakes_are_one_line(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess

    project = tmp_path / "proj"
    shutil.copytree(REPO / "tests" / "data" / "drivers" / "project", project)
    (project / "plugins" / "soak.py").write_text(OPTIONS_PLUGIN)
    env = {k: v for k, v in os.environ.items() if k != "LITMUS_DATA_DIR"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "litmus_seq.cli.main", "run", *args], cwd=project, env=env,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    ok = run("sequences/meter.yaml", "--soak-s=2.5", "--data-dir", "data")
    assert ok.returncode == 0, ok.stderr
    assert (project / "soak.txt").read_text() == "2.5"
    assert run("sequences/meter.yaml", "--data-dir", "data").returncode == 0
    assert (project / "soak.txt").read_text() == "60.0"  # the plugin's default
    typo = run("sequences/meter.yaml", "--soak-ss=3")
    assert typo.returncode == 4
    assert typo.stderr.strip() == ("run: unknown option '--soak-ss' (did you mean '--soak-s'?); `litmus-seq run "
                                   "--help` lists run's options, `litmus-seq plugins` the plugins")
    builtin_typo = run("sequences/meter.yaml", "--data-dri", "x")
    assert builtin_typo.returncode == 4 and "did you mean '--data-dir'?" in builtin_typo.stderr
    bad = run("sequences/meter.yaml", "--soak-s=long")
    assert bad.returncode == 4 and "argument --soak-s: invalid float value: 'long'" in bad.stderr
    assert "Traceback" not in typo.stderr + bad.stderr + builtin_typo.stderr
