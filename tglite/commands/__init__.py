"""One module per `tglite` subcommand; see `tglite.cli` for the contract a module follows."""
