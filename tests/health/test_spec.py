"""[[check]] tables: defaults, every kind's keys, and errors naming file, key and expectation."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from carpctl.daemon.config import ConfigError
from carpctl.health.spec import (
    CheckSpec,
    CommandParams,
    FileParams,
    HttpParams,
    Kind,
    LinkParams,
    PfsyncParams,
    ProcessParams,
    TcpParams,
    parse_checks,
)

FILE = Path("/etc/carpctl/carpctl.toml")


def parse(text: str, catalog: list[Path] | None = None) -> tuple[CheckSpec, ...]:
    return parse_checks(FILE, tomllib.loads(text)["check"], catalog_dirs=catalog)


def refused(text: str, catalog: list[Path] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(text, catalog)
    return caught.value


def test_common_defaults() -> None:
    (spec,) = parse('[[check]]\nname = "web"\nkind = "tcp"\nhost = "127.0.0.1"\nport = 80\n')
    assert spec == CheckSpec("web", TcpParams("127.0.0.1", 80))
    assert (spec.interval, spec.timeout, spec.rise, spec.fall, spec.demote) == (2.0, 1.0, 2, 2, 50)
    assert spec.kind is Kind.TCP


def test_every_kind_with_all_its_keys() -> None:
    specs = parse(
        """
[[check]]
name = "web"
kind = "http"
url = "https://127.0.0.1:8443/health"
expect_status = [200, 204]
body_pattern = "^ok"
verify_tls = false
interval = 3
timeout = 0.5
rise = 3
fall = 1
demote = 1000

[[check]]
name = "proc"
kind = "process"
process_name = "nginx"
cmdline = "master"
pidfile = "/run/nginx.pid"

[[check]]
name = "sync"
kind = "pfsync"

[[check]]
name = "cmd"
kind = "command"
argv = ["/usr/local/bin/check", "--quiet", ""]
env = { LANG = "C", DEPTH = "2" }

[[check]]
name = "flag"
kind = "file"
path = "/etc/carpctl/down"
exists = false

[[check]]
name = "uplink"
kind = "link"
interface = "eth0"

[[check]]
name = "head"
kind = "http"
url = "http://[2001:db8::1]:8080/"
expect_status = 301
method = "HEAD"
"""
    )
    web, proc, sync, cmd, flag, uplink, head = specs
    assert web.params == HttpParams(
        "https://127.0.0.1:8443/health", (200, 204), re.compile("^ok"), False, "GET"
    )
    assert (web.interval, web.timeout, web.rise, web.fall, web.demote) == (3.0, 0.5, 3, 1, 1000)
    assert proc.params == ProcessParams("nginx", re.compile("master"), Path("/run/nginx.pid"))
    assert sync.params == PfsyncParams("pfsync0", "ifconfig")
    assert cmd.params == CommandParams(
        ("/usr/local/bin/check", "--quiet", ""), (("DEPTH", "2"), ("LANG", "C"))
    )
    assert flag.params == FileParams(Path("/etc/carpctl/down"), exists=False)
    assert uplink.params == LinkParams("eth0")
    assert head.params == HttpParams("http://[2001:db8::1]:8080/", (301,), None, True, "HEAD")
    assert [s.kind for s in specs] == [
        Kind.HTTP,
        Kind.PROCESS,
        Kind.PFSYNC,
        Kind.COMMAND,
        Kind.FILE,
        Kind.LINK,
        Kind.HTTP,
    ]


def test_timeout_defaults_to_the_interval_when_that_is_shorter() -> None:
    (spec,) = parse('[[check]]\nname = "f"\nkind = "file"\npath = "/x"\ninterval = 0.25\n')
    assert spec.timeout == 0.25


TCP = 'name = "web"\nkind = "tcp"\nhost = "127.0.0.1"\n'


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        # wrong types and ranges of the common keys
        (TCP + 'port = "x"', "check[0].port", "expected an integer 1..65535, got 'x'"),
        (TCP + "port = 0", "check[0].port", "expected an integer 1..65535, got 0"),
        (TCP + "port = true", "check[0].port", "expected an integer 1..65535, got True"),
        (TCP + "port = 1\ninterval = 0", "check[0].interval", "above 0"),
        (TCP + 'port = 1\ninterval = "2s"', "check[0].interval", "got '2s'"),
        (TCP + "port = 1\ntimeout = 3", "check[0].timeout", "at most the interval (2)"),
        (TCP + "port = 1\nrise = 0", "check[0].rise", "expected an integer 1..100, got 0"),
        (TCP + "port = 1\nfall = 1.5", "check[0].fall", "expected an integer 1..100, got 1.5"),
        (TCP + "port = 1\ndemote = 1001", "check[0].demote", "an integer 0..1000, got 1001"),
        (TCP + "port = 1\ndemote = -1", "check[0].demote", "an integer 0..1000, got -1"),
        ('name = "a b"\nkind = "file"\npath = "/x"', "check[0].name", "letters, digits"),
        ('kind = "file"\npath = "/x"', "check[0].name", "missing; expected a name"),
        ('name = "x"\nkind = "ftp"', "check[0].kind", "one of http, tcp, process, pfsync, "),
        ('name = "x"\npath = "/x"', "check[0].kind", "missing; expected one of http, tcp"),
        # unknown keys, also keys of another kind
        (TCP + "port = 1\nretries = 3", "check[0].retries", "unknown key for a tcp check"),
        (TCP + 'port = 1\nurl = "http://x/"', "check[0].url", "(url belongs to http checks)"),
        ('name = "t"\nkind = "tcp"\nport = 1', "check[0].host", "missing; expected a host"),
        # http
        ('name = "h"\nkind = "http"\nurl = "ftp://x/"', "check[0].url", "an http:// or https://"),
        ('name = "h"\nkind = "http"\nurl = "http://"', "check[0].url", "got 'http://'"),
        ('name = "h"\nkind = "http"\nurl = "http://x:99999/"', "check[0].url", "URL"),
        (
            'name = "h"\nkind = "http"\nurl = "http://x/"\nexpect_status = [200, 700]',
            "check[0].expect_status",
            "an HTTP status 100..599 or a list of them, got [200, 700]",
        ),
        (
            'name = "h"\nkind = "http"\nurl = "http://x/"\nexpect_status = []',
            "check[0].expect_status",
            "got []",
        ),
        (
            'name = "h"\nkind = "http"\nurl = "http://x/"\nbody_pattern = "(oops"',
            "check[0].body_pattern",
            "expected a regular expression, got '(oops': missing ), unterminated subpattern",
        ),
        (
            'name = "h"\nkind = "http"\nurl = "http://x/"\nmethod = "POST"',
            "check[0].method",
            "expected one of GET, HEAD, got 'POST'",
        ),
        (
            'name = "h"\nkind = "http"\nurl = "http://x/"\nmethod = "HEAD"\nbody_pattern = "a"',
            "check[0].body_pattern",
            "no body_pattern with method HEAD",
        ),
        (
            'name = "h"\nkind = "http"\nurl = "http://x/"\nverify_tls = "no"',
            "check[0].verify_tls",
            "expected true or false, got 'no'",
        ),
        # process
        ('name = "p"\nkind = "process"', "check[0].process_name", "at least one of"),
        ('name = "p"\nkind = "process"\ncmdline = "[a"', "check[0].cmdline", "regular expr"),
        ('name = "p"\nkind = "process"\npidfile = 5', "check[0].pidfile", "got 5"),
        # pfsync, link
        ('name = "s"\nkind = "pfsync"\ninterface = "a b"', "check[0].interface", "interface"),
        ('name = "l"\nkind = "link"', "check[0].interface", "missing; expected an interface"),
        # command: never a shell string
        (
            'name = "c"\nkind = "command"\nargv = "/usr/bin/check --all"',
            "check[0].argv",
            "expected a list of strings (the program and its arguments, run without a shell), "
            'got the string \'/usr/bin/check --all\'; write it as ["/usr/bin/check", "--all"]',
        ),
        (
            'name = "c"\nkind = "command"\nargv = "pgrep nginx || exit 2"',
            "check[0].argv",
            "got the string 'pgrep nginx || exit 2'; shell syntax needs a script",
        ),
        ('name = "c"\nkind = "command"\nargv = []', "check[0].argv", "a non-empty list"),
        ('name = "c"\nkind = "command"\nargv = ["x", 1]', "check[0].argv", "got ['x', 1]"),
        ('name = "c"\nkind = "command"\nargv = [""]', "check[0].argv", "non-empty list"),
        ('name = "c"\nkind = "command"', "check[0].argv", "missing; expected a list of strings"),
        (
            'name = "c"\nkind = "command"\nargv = ["x"]\nenv = { A = 1 }',
            "check[0].env",
            "expected a table of NAME = \"string\" values, got {'A': 1}",
        ),
        ('name = "c"\nkind = "command"\nargv = ["x"]\nenv = ["A=1"]', "check[0].env", "table"),
        # file
        ('name = "f"\nkind = "file"\npath = "/x"\nexists = 1', "check[0].exists", "true or f"),
        ('name = "f"\nkind = "file"\npath = ""', "check[0].path", "expected a file path"),
    ],
)
def test_bad_values_name_file_key_and_expectation(body: str, key: str, expected: str) -> None:
    error = refused("[[check]]\n" + body + "\n")
    assert (error.file, error.key) == (str(FILE), key)
    assert str(error).startswith(f"{FILE}: {key}: ")
    assert expected in str(error)


def test_duplicate_names_are_refused_at_the_second() -> None:
    error = refused(
        '[[check]]\nname = "a"\nkind = "file"\npath = "/x"\n'
        '[[check]]\nname = "b"\nkind = "file"\npath = "/x"\n'
        '[[check]]\nname = "a"\nkind = "file"\npath = "/y"\n'
    )
    assert str(error) == f"{FILE}: check[2].name: duplicate: 'a' is also check[0]"


def test_errors_report_the_index_of_the_bad_table() -> None:
    error = refused(
        '[[check]]\nname = "a"\nkind = "file"\npath = "/x"\n'
        '[[check]]\nname = "b"\nkind = "tcp"\nhost = "h"\nport = 1\n'
        '[[check]]\nname = "c"\nkind = "file"\npath = "/x"\n'
        '[[check]]\nname = "d"\nkind = "tcp"\nhost = "h"\nport = "x"\n'
    )
    assert error.key == "check[3].port"
    assert str(error).endswith("expected an integer 1..65535, got 'x'")


@pytest.mark.parametrize("raw", [{"check": 1}, [1], ["x"]])
def test_not_tables_at_all(raw: Any) -> None:
    with pytest.raises(ConfigError, match="expected"):
        parse_checks(FILE, raw if isinstance(raw, list) else raw["check"])


# -- use = "stock" ------------------------------------------------------------


@pytest.fixture
def catalog(tmp_path: Path) -> list[Path]:
    (tmp_path / "web.toml").write_text(
        '# a stock entry\n[check]\nkind = "tcp"\nhost = "127.0.0.1"\nport = 80\ndemote = 70\n'
    )
    (tmp_path / "url.toml").write_text('[check]\nkind = "http"\nexpect_status = [204]\n')
    (tmp_path / "bad.toml").write_text('[check]\nkind = "tcp"\nhost = "h"\nport = "eighty"\n')
    (tmp_path / "named.toml").write_text('[check]\nname = "x"\nkind = "file"\npath = "/x"\n')
    (tmp_path / "extra.toml").write_text('[check]\nkind = "file"\npath = "/x"\n[more]\n')
    return [tmp_path]


def test_use_takes_a_stock_entry_and_the_table_overrides_it(catalog: list[Path]) -> None:
    plain, overridden = parse(
        '[[check]]\nuse = "web"\n[[check]]\nuse = "web"\nname = "web8080"\nport = 8080\n',
        catalog,
    )
    assert plain == CheckSpec("web", TcpParams("127.0.0.1", 80), demote=70, use="web")
    assert overridden == CheckSpec("web8080", TcpParams("127.0.0.1", 8080), demote=70, use="web")


def test_use_of_an_entry_that_leaves_a_key_to_the_config(catalog: list[Path]) -> None:
    (spec,) = parse('[[check]]\nuse = "url"\nurl = "http://127.0.0.1/"\n', catalog)
    assert spec.params == HttpParams("http://127.0.0.1/", (204,))
    error = refused('[[check]]\nuse = "url"\n', catalog)
    assert error.key == "check[0].url"
    assert "missing; expected an http:// or https:// URL (the stock check url leaves" in str(error)


def test_use_of_an_unknown_entry_lists_the_known_ones(catalog: list[Path]) -> None:
    error = refused('[[check]]\nuse = "nginz"\n', catalog)
    assert error.key == "check[0].use"
    assert "expected the name of a stock check (bad, extra, named, url, web), got 'nginz'" in str(
        error
    )
    assert refused('[[check]]\nuse = "../web"\n', catalog).key == "check[0].use"
    assert refused("[[check]]\nuse = 3\n", catalog).key == "check[0].use"


def test_a_bad_value_from_the_stock_file_is_reported_against_that_file(
    catalog: list[Path],
) -> None:
    error = refused('[[check]]\nuse = "bad"\nname = "b"\n', catalog)
    assert error.file == str(catalog[0] / "bad.toml")
    assert error.key == "check.port"
    assert f"the stock check used by {FILE}: check[0]" in str(error)
    # the same key from the config is the config's fault, and fixes it
    (spec,) = parse('[[check]]\nuse = "bad"\nport = 80\n', catalog)
    assert spec.params == TcpParams("h", 80)


def test_malformed_stock_entries(catalog: list[Path]) -> None:
    assert refused('[[check]]\nuse = "named"\n', catalog).key == "check.name"
    assert refused('[[check]]\nuse = "extra"\n', catalog).key == "more"
    (catalog[0] / "broken.toml").write_text("[check\n")
    error = refused('[[check]]\nuse = "broken"\n', catalog)
    assert error.file == str(catalog[0] / "broken.toml")
    assert "not valid TOML" in str(error)


def test_the_first_catalog_directory_wins(tmp_path: Path, catalog: list[Path]) -> None:
    first = tmp_path / "first"
    first.mkdir()
    (first / "web.toml").write_text('[check]\nkind = "tcp"\nhost = "::1"\nport = 81\n')
    (spec,) = parse('[[check]]\nuse = "web"\n', [first, *catalog])
    assert spec.params == TcpParams("::1", 81)


def test_no_health_module_imports_the_daemon_at_import_time() -> None:
    """carpctl.daemon.config imports parse_checks: a top-level import back would be circular."""
    import ast

    import carpctl.health

    root = Path(carpctl.health.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:  # module level only
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("carpctl.daemon")]
    assert offenders == []
