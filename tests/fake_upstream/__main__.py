"""Run the fake hub as its own process (benchmarks): `python -m tests.fake_upstream --help`.

Prints one JSON line (URLs, and per file its sha256 and the commit) once both origins listen,
then serves until killed. `GET /_fake/stats` on the hub origin returns the counters;
`POST /_fake/reset-stats` clears them; `POST /_fake/cdn-rate?bytes_per_second=N` changes the cap.
"""

import argparse
import json
import signal
import threading

from tests.fake_upstream.repos import FakeHub, GeneratedFile
from tests.fake_upstream.server import FakeHubServer


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake Hugging Face hub + CDN for benchmarks.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cdn-port", type=int, default=0)
    parser.add_argument(
        "--generated", action="append", default=[], metavar="REPO:PATH:SIZE:SEED",
        help="add a generated file (repeatable)",
    )  # fmt: skip
    parser.add_argument("--cdn-rate", type=int, default=None, help="bytes/s per CDN connection")
    arguments = parser.parse_args()

    hub = FakeHub()
    hub.cdn_bytes_per_second_per_connection = arguments.cdn_rate
    repos: dict[str, dict[str, bytes | GeneratedFile]] = {}
    for spec in arguments.generated:
        repo_id, path, size, seed = spec.rsplit(":", 3)
        generated = GeneratedFile(int(size), int(seed))
        # Below the LFS threshold a file is a regular git blob, held as bytes.
        small = generated.size < hub.lfs_threshold
        repos.setdefault(repo_id, {})[path] = (
            generated.read(0, generated.size) if small else generated
        )
    commits = {repo_id: hub.add_repo(repo_id, files) for repo_id, files in repos.items()}
    files = {
        f"{repo_id}/{path}": {
            "sha256": content.sha256(),
            "size": content.size,
            "commit": commits[repo_id],
        }
        for repo_id, repo_files in repos.items()
        for path, content in repo_files.items()
        if isinstance(content, GeneratedFile)
    }
    server = FakeHubServer(hub, port=arguments.port, cdn_port=arguments.cdn_port).start()
    print(json.dumps({"url": server.url, "cdn_url": server.cdn_url, "files": files}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
