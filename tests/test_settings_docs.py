"""The README's settings table says what `strongroom serve --help` says."""

import re
from pathlib import Path

from click.testing import CliRunner

from strongroom.cli import main
from strongroom.settings import SETTINGS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_has_a_flag_and_a_variable_in_the_readme():
    rows = re.findall(
        r"^\| `(--[a-z-]+)` \| `(STRONGROOM_[A-Z_]+)` \|", README.read_text(), re.MULTILINE
    )
    assert rows == [(s.flag, s.env) for s in SETTINGS]


def test_serve_help_lists_every_setting_with_its_variable():
    result = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for setting in SETTINGS:
        assert setting.flag in result.output
        assert setting.env in result.output
