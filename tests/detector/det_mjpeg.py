"""A local MJPEG-over-HTTP camera for tests: serves numbered frames and can drop connections."""

from __future__ import annotations

import socket
import threading
import time

import cv2
import numpy as np


def frame_jpeg(n: int, size: tuple[int, int] = (320, 240)) -> bytes:
    img = np.full((size[1], size[0], 3), 90, np.uint8)
    cv2.putText(img, str(n), (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (255, 255, 255), 3)
    cv2.rectangle(img, (10 + (n * 5) % 200, 150), (60 + (n * 5) % 200, 200), (0, 0, 200), -1)
    return cv2.imencode(".jpg", img)[1].tobytes()


class MjpegServer:
    """``http://127.0.0.1:<port>/cam``; each connection gets ``frames_per_connection`` frames at
    ``fps`` then is cut (a dropped stream); ``stall_s`` > 0 instead stops sending without closing."""

    def __init__(self, fps: float = 25.0, frames_per_connection: int | None = None, stall_s: float = 0.0,
                 corrupt_every: int | None = None):
        self.fps = fps
        self.corrupt_every = corrupt_every  # every Nth frame sent truncated mid-scan
        self.corrupted = 0
        self.frames_per_connection = frames_per_connection
        self.stall_s = stall_s
        self.connections = 0
        self.sent = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/cam"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "MjpegServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve_one, args=(conn,), daemon=True).start()

    def _serve_one(self, conn: socket.socket) -> None:
        try:
            self._stream(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def frame(self, n: int) -> bytes | None:
        """JPEG of frame ``n`` (numbered across connections); None when there are no more."""
        return frame_jpeg(n)

    def _stream(self, conn: socket.socket) -> None:
        conn.settimeout(2)
        conn.recv(4096)  # the request
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n")
        n = 0
        while not self._stop.is_set():  # frame numbers continue across connections
            if self.frames_per_connection is not None and n >= self.frames_per_connection:
                if self.stall_s:
                    self._stop.wait(self.stall_s)
                return
            data = self.frame(self.sent)
            if data is None:  # the camera has nothing more to send
                return
            if self.corrupt_every and self.sent % self.corrupt_every == self.corrupt_every - 1:
                data = data[: len(data) // 3]  # truncated mid-scan
                self.corrupted += 1
            conn.sendall(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
                         + data + b"\r\n")
            n += 1
            self.sent += 1
            time.sleep(1.0 / self.fps)
