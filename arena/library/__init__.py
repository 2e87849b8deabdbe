"""The YAML library: games and programs loaded from files, with file:line problems (lowest layer after errors)."""
