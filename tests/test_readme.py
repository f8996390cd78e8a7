"""The README's Quick start commands stay true: CI runs the test command verbatim."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```bash\n")[1:]
    return [block.split("```", 1)[0].strip() for block in blocks]


def test_quick_start_has_exactly_two_one_line_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)


def test_ci_runs_the_readme_test_command_verbatim():
    install_and_run, test_command = _quick_start_commands()
    ci_script = (REPO / ".ci" / "run").read_text()
    assert test_command in ci_script.splitlines()
    assert "softreg" in install_and_run
