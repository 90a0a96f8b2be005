"""The command line without servers: every bad config and usage error exits 2 before anything
is contacted, with the key path on stderr."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from rotator.cli import main
from tests.unit.test_config import BAD_CONFIGS, BASE, Mutation


def _write(tmp_path: Path, raw: object) -> Path:
    path = tmp_path / "rotator.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("mutation", "path"),
    [pytest.param(m, p, id=i) for i, m, p, _phrase in BAD_CONFIGS],
)
@pytest.mark.parametrize("command", [["check-config"], ["rotate", "--now"]])
def test_every_bad_config_exits_2_with_its_key_path(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mutation: Mutation,
    path: str,
    command: list[str],
) -> None:
    raw = copy.deepcopy(BASE)
    mutation(raw)

    code = main([*command, "--config", str(_write(tmp_path, raw))])

    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert f"rotator: {path}: " in err
    assert "Traceback" not in err


def test_a_good_config_is_summarised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write(tmp_path, BASE)

    assert main(["check-config", "--config", str(config)]) == 0

    out, _err = capsys.readouterr()
    assert out == f"{config}: ok (2 clusters, 2 registries, 1 secrets)\n"


def test_missing_config_argument_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ROTATOR_CONFIG", raising=False)

    assert main(["check-config"]) == 2

    assert "--config is required" in capsys.readouterr().err


def test_rotate_without_now_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["rotate", "--config", "x.yaml"])

    assert exit_info.value.code == 2
    assert "--now" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "known"), [("--cluster", "prod, stage"), ("--registry", "harbor, nexus")]
)
def test_an_unknown_scope_name_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, known: str
) -> None:
    config = _write(tmp_path, BASE)

    code = main(["rotate", "--now", "--config", str(config), flag, "nope"])

    assert code == 2
    assert f"rotator: {flag} nope: not in the config (known: {known})" in capsys.readouterr().err
