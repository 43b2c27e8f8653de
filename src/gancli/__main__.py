"""``python -m gancli`` is the same as the ``gan`` command."""

from gancli.cli import main

if __name__ == "__main__":
    main()
