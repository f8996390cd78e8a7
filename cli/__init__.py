"""softreg's command-line interface (Typer), a thin layer over softreg.model and softreg.data."""
