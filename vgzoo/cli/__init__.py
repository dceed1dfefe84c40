"""The `vgzoo` command: `commands` parses and dispatches, `pretrained` holds the
checkpoint commands, `common` what both share."""
from vgzoo.cli.commands import main

__all__ = ["main"]
