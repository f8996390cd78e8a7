"""Shared fixtures: a Typer runner over the installed app."""

import pytest
from typer.testing import CliRunner


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
