"""`python -m softreg.cli` runs the command line."""

from softreg.cli.app import main

main()
