"""`python -m nandoc` runs the command line."""

from nandoc.cli import main

if __name__ == "__main__":  # not when a spawned child process (multiprocessing) imports it
    main()
