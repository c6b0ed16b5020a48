"""JupyterLab starts on loopback and lists the study's notebooks through its REST API."""
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _readme_command() -> list[str]:
    """The JupyterLab command the README gives (its line starting with .venv/bin/jupyter lab)."""
    line = next(l for l in (ROOT / "README.md").read_text().splitlines()
                if l.startswith(".venv/bin/jupyter lab"))
    return line.split("#")[0].split()


@pytest.mark.skipif(shutil.which("jupyter") is None and not Path(sys.executable).with_name("jupyter").exists(),
                    reason="jupyterlab is not installed")
def test_jupyterlab_started_as_the_readme_says_lists_the_notebooks(tmp_path):
    """The README's command (with this interpreter's jupyter, a free port and a known token
    added) serves the notebook folder on loopback; the REST API lists the four notebooks."""
    port, token = _free_port(), "fer-smoke-test"
    command = _readme_command()
    assert "--ip=127.0.0.1" in command and any(a.startswith("--ServerApp.root_dir=") for a in command)
    command[0] = str(Path(sys.executable).with_name("jupyter"))
    proc = subprocess.Popen(command + ["--no-browser", f"--port={port}", f"--IdentityProvider.token={token}",
                                       "--allow-root"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**__import__("os").environ, "JUPYTER_RUNTIME_DIR": str(tmp_path)})
    try:
        url = f"http://127.0.0.1:{port}/api/contents?token={token}"
        deadline, listing = time.time() + 90, None
        while time.time() < deadline and listing is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    listing = json.load(r)
            except OSError:
                time.sleep(0.5)
        assert listing is not None, "JupyterLab did not answer within 90 s"
        names = {item["name"] for item in listing["content"]}
        assert {"00_explore_data.ipynb", "10_finetune_per_loss.ipynb", "20_two_stage_focal.ipynb",
                "30_results_tables.ipynb"} <= names
    finally:
        proc.terminate()
        proc.wait(timeout=30)
