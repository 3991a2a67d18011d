"""One module per subcommand: each takes explicit arguments and returns an exit code."""
