"""One module per `ivr` subcommand (see ivr/cli.py)."""
