"""`lctk mcp`: serve search, related, index, compress and ask to coding agents over MCP (stdio)."""

from __future__ import annotations


def mcp() -> None:
    """Serve lctk's tools to coding agents over the Model Context Protocol on stdin/stdout (models stay loaded)."""
    import importlib.util

    from lctk.errors import LctkError

    if importlib.util.find_spec("mcp") is None:
        raise LctkError("the MCP server needs the mcp package: pip install 'lctk[mcp]'")
    from lctk.cli.mcp_server import serve

    serve()
