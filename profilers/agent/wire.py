"""What an agent and the server agree on: the protocol version both speak (sent in a header on
every agent request, carried by tasks and results), how a device may be named, and the names of
a task's files."""

from __future__ import annotations

# 1: agents converted each OpSpec themselves (torch on the target), sent no version.
# 2: the server converts; tasks carry the files to download (by sha256), results the version.
PROTOCOL_VERSION = 2
PROTOCOL_HEADER = "X-Hwnas-Agent-Protocol"
# The fingerprint's field saying who converts the files an agent times ("server": a thin
# agent); the server then adds its converter's version as "converter".
CONVERSION_FIELD = "conversion"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$"
WARMUP_FILE, REFERENCE_FILE = "warmup", "reference"  # a task's support models in `files`


def version_problem(agent: int, server: int = PROTOCOL_VERSION) -> str | None:
    """None if the versions match, else one line naming both and what to update."""
    if agent == server:
        return None
    if agent < server:
        return (
            f"agent protocol {agent} is too old for this server (protocol {server}): update the "
            "agent (scripts/setup-agent.sh, or pip install -U the hwnas-agent package)"
        )
    return (
        f"agent protocol {agent} is newer than this server's (protocol {server}): update the "
        f"server, or run an agent of protocol {server}"
    )
