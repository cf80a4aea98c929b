"""Print an HTML page to PDF with headless Chromium (Debian's ``/usr/bin/chromium``).

Flags: headless, no sandbox (root in a container), no GPU, no first-run, no background
networking / component updates / sync (the machine's network is closed: without them Chromium
retries connections for seconds), a fresh ``--user-data-dir`` per call, no header and footer.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-pdf-header-footer",
)  # fmt: skip
TIMEOUT_SECONDS = 120.0


class PdfError(RuntimeError):
    """Chromium could not print the page (missing, failed or timed out)."""


def print_pdf(html: str, out: Path, *, chromium: Path = CHROMIUM, timeout_s: float = TIMEOUT_SECONDS) -> None:
    """Render ``html`` (a self-contained page) to the PDF file ``out``."""
    if not chromium.exists():
        raise PdfError(f"{chromium} is missing: install Debian's chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="otelspend-pdf-") as work:
        page = Path(work) / "statement.html"
        page.write_text(html, encoding="utf-8")
        target = out.resolve()
        command = [
            str(chromium), *FLAGS, f"--user-data-dir={Path(work) / 'profile'}", f"--print-to-pdf={target}",
            page.as_uri(),
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise PdfError(f"chromium did not print {out.name} within {timeout_s:.0f}s") from None
    if done.returncode != 0 or not target.is_file() or target.read_bytes()[:5] != b"%PDF-":
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise PdfError(f"chromium failed to print {out.name} (exit {done.returncode}): {' | '.join(tail)}")
