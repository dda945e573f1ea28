"""Listening for `hubproxy serve`: the socket is bound before anything starts.

uvicorn binds its socket only after the application's lifespan has run, so a busy port used to
show up as a start-up log, "hubproxy ready", and then a bind error. Binding first makes a port
that cannot be used a one-line failure before the data dir is opened; uvicorn then serves on
the socket it is handed.
"""

import logging
import os
import socket

import uvicorn

from hubproxy.settings import Settings

logger = logging.getLogger(__name__)

# uvicorn's exit status when the server could not start (its lifespan failed, for example).
STARTUP_FAILURE_EXIT_CODE = 3
LISTEN_BACKLOG = 2048


class CannotListen(Exception):
    """The address could not be bound; the message is the one line to show the user."""


def _reason(error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host ({error.strerror})"
    if error.errno is not None:
        return os.strerror(error.errno).lower()
    return str(error) or type(error).__name__


def display_address(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) and listening, or `CannotListen` saying why not."""
    try:
        family, kind, protocol, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, protocol)
    except OSError as error:
        raise CannotListen(
            f"cannot listen on {display_address(host, port)}: {_reason(error)}"
        ) from None
    try:
        # Restarts must not wait for TIME_WAIT; Linux still refuses a port another socket
        # listens on, which is the failure this function exists to report.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError as error:
        sock.close()
        raise CannotListen(
            f"cannot listen on {display_address(host, port)}: {_reason(error)}"
        ) from None
    sock.set_inheritable(True)
    return sock


def run_on_socket(config: uvicorn.Config, sock: socket.socket, settings: Settings) -> int:
    """Run uvicorn on `sock` until it stops; the process exit status."""
    server = uvicorn.Server(config)
    logger.info("listening on http://%s", display_address(settings.host, settings.port))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0 if server.started else STARTUP_FAILURE_EXIT_CODE
