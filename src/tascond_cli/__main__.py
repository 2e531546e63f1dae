"""``python -m tascond_cli`` runs the command-line tool."""

from tascond_cli.cli import main

if __name__ == "__main__":
    main()
