"""`python -m nandoc` runs the command line."""

from nandoc.cli import main

main()
