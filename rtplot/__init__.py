"""The ``rtplot`` command: one subcommand per service, and ``up`` to run them all."""
