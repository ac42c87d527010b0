"""One module per `tuiwiz` sub-command."""
