"""Checks the WebSocket client scripts share."""

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


def too_big_is_1009(url, fits, too_big):
    """On a server with a --websocket-max-message-size between the two
    sizes: `fits` echoes, `too_big` closes the connection with 1009."""
    with connect(url, max_size=None) as ws:
        ws.send(fits)
        assert ws.recv(timeout=10) == fits
        ws.send(too_big)
        try:
            ws.recv(timeout=10)
            raise AssertionError(f"a {len(too_big)}-byte message was accepted")
        except ConnectionClosed as exc:
            assert exc.rcvd.code == 1009, exc
