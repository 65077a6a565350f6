"""One module per command: parse the options, call one library object, render."""

__all__: list[str] = []
