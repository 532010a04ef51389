"""A private Docker engine, and stand-ins for the public images rtplot's Dockerfile and
docker-compose.yml name, built locally under the same tags: for a machine that can run
Docker but reach no image registry (see docs/docker-test.md).

- The engine: Debian's ``dockerd``, as root, on its own socket, data root and exec root,
  with ``--iptables=false --ip-masq=false --bridge=none`` so the host's firewall and
  networks are left alone. Compose's own networks, their DNS, healthchecks and published
  ports (docker-proxy) all work without them. Images persist in the data root between
  runs, so only the first run builds them.
- The images: a Debian bookworm root file system (``debootstrap --variant=minbase``),
  imported; ``python:3.11.*`` is that base plus this machine's CPython 3.11 in
  /usr/local, with the host's CA bundle and pip configuration, so ``pip install`` in a
  build (run with ``--network host``) reaches PyPI as the host does; ``redis``,
  ``haproxy`` and ``prom/prometheus`` are Debian's packages in that base, set up like
  the real images (entrypoint, working directory, user). Grafana has no Debian package
  and no stand-in.

Run alone, ``python tests/docker_standins.py`` starts the engine, builds what is
missing and waits, printing the DOCKER_HOST to use, until Ctrl-C.
"""

import fcntl
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import yaml

ROOT = Path(__file__).resolve().parent.parent
BASE = "rtplot-standin/debian:bookworm"
MIRROR = os.environ.get("RTPLOT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# Images and build cache, kept between runs; one engine at a time uses it.
STATE = Path(os.environ.get("RTPLOT_DOCKER_TEST_ROOT", "/var/tmp/rtplot-docker-test"))
TOOLS = ("dockerd", "docker", "docker-compose", "debootstrap")
# Python's shared libraries' Debian packages, as in python:*-slim (no Tk).
PYTHON_LIBS = (
    "ca-certificates netbase tzdata libbz2-1.0 libcrypt1 libexpat1 libffi8 liblzma5 "
    "libncursesw6 libnsl2 libreadline8 libsqlite3-0 libssl3 libtirpc3 libuuid1 zlib1g"
)
STDLIB_LEFT_OUT = ("site-packages", "test", "idlelib", "tkinter", "turtledemo", "__pycache__")
APT = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq " + (
    "--no-install-recommends"
)


class Unavailable(RuntimeError):
    """No Docker engine can run here; the message says why and what to do."""


class Docker:
    """The docker CLI on one engine, with the classic builder: BuildKit would fetch the
    Dockerfile's ``# syntax=`` frontend from a registry."""

    def __init__(self, socket: Path) -> None:
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{socket}", DOCKER_BUILDKIT="0")

    def __call__(self, *args: str, timeout: float = 600, stdin: IO[bytes] | None = None) -> str:
        result = subprocess.run(
            ["docker", *args], env=self.env, stdin=stdin, capture_output=True, timeout=timeout
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise RuntimeError(f"docker {' '.join(args)} failed:\n{output[-3000:]}")
        return result.stdout.decode(errors="replace")

    def has_image(self, tag: str) -> bool:
        found = subprocess.run(
            ["docker", "image", "inspect", tag], env=self.env, capture_output=True
        )
        return found.returncode == 0

    def build(self, tag: str, context: Path, dockerfile: Path | None = None) -> str:
        file = ["--file", str(dockerfile)] if dockerfile else []
        return self("build", "--network", "host", "--tag", tag, *file, str(context), timeout=900)


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


class Engine:
    """A dockerd of our own, started as a context manager and stopped on the way out."""

    def __init__(self, log_path: Path) -> None:
        if os.geteuid() != 0:
            raise Unavailable("starting a Docker engine needs root")
        if missing := missing_tools():
            raise Unavailable(
                f"{', '.join(missing)} not found: install docker.io, docker-compose and "
                "debootstrap (python3 scripts/system_packages.py docker)"
            )
        self.log_path = log_path
        self.run_dir = Path(tempfile.mkdtemp(prefix="rtplot-dockerd-"))
        self.socket = self.run_dir / "docker.sock"
        self.docker = Docker(self.socket)
        self.process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    def __enter__(self) -> "Engine":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self, timeout: float = 60) -> None:
        STATE.mkdir(parents=True, exist_ok=True)
        self._lock = (STATE / "lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Unavailable(f"another run is using the Docker engine in {STATE}") from None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    "dockerd",
                    f"--host=unix://{self.socket}",
                    f"--data-root={STATE / 'data'}",
                    f"--exec-root={self.run_dir / 'exec'}",
                    f"--pidfile={self.run_dir / 'docker.pid'}",
                    "--iptables=false",
                    "--ip-masq=false",
                    "--bridge=none",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.docker("version", timeout=10)
                return
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-1500:]
                raise Unavailable(f"dockerd did not start; its log ends:\n{tail}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # dockerd leaves its default network namespace mounted in the exec root.
        for mount in reversed(Path("/proc/self/mounts").read_text().splitlines()):
            point = mount.split()[1]
            if point.startswith(f"{self.run_dir}/"):
                subprocess.run(["umount", "--lazy", point], capture_output=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()  # releases the lock
            self._lock = None


# -- the images ------------------------------------------------------------------------


def public_images() -> list[str]:
    """Every image the Dockerfile and docker-compose.yml pull, in their order."""
    text = (ROOT / "Dockerfile").read_text()
    tags = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    tags += [s["image"] for s in services.values() if "image" in s and "build" not in s]
    return list(dict.fromkeys(tags))


def recipe(tag: str) -> str | None:
    """The Dockerfile of a stand-in, after its FROM line; None: no stand-in (Grafana)."""
    name = tag.split(":")[0]
    if name == "python":
        return PYTHON_RECIPE
    if name == "redis":
        return f"""\
RUN {APT} redis-server && rm -rf /var/lib/apt/lists/*
WORKDIR /data
CMD ["redis-server"]
"""
    if name == "haproxy":
        return f"""\
RUN {APT} haproxy wget && rm -rf /var/lib/apt/lists/* && mkdir -p /usr/local/etc/haproxy
USER haproxy
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
"""
    if name == "prom/prometheus":
        return f"""\
RUN {APT} prometheus wget && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
"""
    return None


PYTHON_RECIPE = f"""\
RUN {APT} {PYTHON_LIBS} && rm -rf /var/lib/apt/lists/*
COPY python/ /usr/local/
COPY etc/ /etc/
RUN ldconfig \\
 && ln -s python3.11 /usr/local/bin/python3 && ln -s python3 /usr/local/bin/python \\
 && python3 -m ensurepip --default-pip
ENV LANG=C.UTF-8
CMD ["python3"]
"""


def build_standins(docker: Docker, say: Callable[[str], None] | None = None) -> list[str]:
    """Builds every stand-in the engine lacks; the tags built."""
    say = say or _say
    built = []
    for tag in public_images():
        if recipe(tag) is None or docker.has_image(tag):
            continue
        if not docker.has_image(BASE):
            say("debootstrap: a Debian bookworm base image")
            build_base(docker)
        say(f"building a stand-in for {tag}")
        with tempfile.TemporaryDirectory(prefix="rtplot-standin-") as scratch:
            context = Path(scratch)
            env_lines = stage_python(context, tag) if tag.startswith("python:") else ""
            dockerfile = f"FROM {BASE}\n{recipe(tag)}{env_lines}"
            dockerfile += f'LABEL org.rtplot.standin="{tag}"\n'
            (context / "Dockerfile").write_text(dockerfile)
            docker.build(tag, context)
        built.append(tag)
    return built


def build_base(docker: Docker) -> None:
    with tempfile.TemporaryDirectory(prefix="rtplot-rootfs-", dir="/var/tmp") as scratch:
        rootfs = Path(scratch) / "rootfs"
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), MIRROR],
            capture_output=True,
            timeout=900,
        )
        if result.returncode != 0:
            raise RuntimeError("debootstrap failed:\n" + result.stdout.decode()[-3000:])
        for cached in [
            *rootfs.glob("var/cache/apt/archives/*.deb"),
            *rootfs.glob("var/lib/apt/lists/*_*"),
        ]:
            cached.unlink()
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            docker("import", "--change", 'CMD ["bash"]', "-", BASE, stdin=tar.stdout)


def stage_python(context: Path, tag: str) -> str:
    """This machine's CPython into ``context/python`` (a /usr/local tree), its CA bundle
    and pip configuration into ``context/etc``; the ENV lines that carry pip's settings."""
    want = tag.split(":")[1].split("-")[0].split(".")[:2]  # "3.11.14-slim-…" -> 3.11
    have = [str(n) for n in sys.version_info[:2]]
    if have != want:
        raise Unavailable(f"{tag} needs a CPython {'.'.join(want)} here to copy, not {have}")
    prefix = Path(sys.base_prefix)
    version = f"python{'.'.join(have)}"
    target = context / "python"
    (target / "bin").mkdir(parents=True)
    shutil.copy2(prefix / "bin" / version, target / "bin" / version)
    libdir = Path(sysconfig.get_config_var("LIBDIR") or prefix / "lib")
    (target / "lib").mkdir()
    for shared in libdir.glob(f"lib{version}*.so*"):
        shutil.copy2(shared, target / "lib" / shared.name)
    shutil.copytree(
        prefix / "lib" / version,
        target / "lib" / version,
        ignore=lambda folder, names: [
            n for n in names if n in STDLIB_LEFT_OUT or n.startswith("_tkinter")
        ],
    )
    (target / "lib" / version / "site-packages").mkdir()
    return stage_pip_config(context / "etc")


def stage_pip_config(etc: Path) -> str:
    """The CA bundle the host trusts (a TLS-inspecting proxy's CA included), the
    machine-wide pip configuration, and the PIP_* and proxy variables that hold no path
    of this machine's (a file:// index or a find-links folder would not exist inside)."""
    bundle = Path(os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().cafile or "")
    (etc / "ssl/certs").mkdir(parents=True)
    inside = "/etc/ssl/certs/ca-certificates.crt"
    if bundle.is_file():
        shutil.copy2(bundle, etc / "ssl/certs/ca-certificates.crt")
    if Path("/etc/pip.conf").is_file():
        shutil.copy2("/etc/pip.conf", etc / "pip.conf")
    if Path("/etc/xdg/pip").is_dir():
        shutil.copytree("/etc/xdg/pip", etc / "xdg/pip")
    env = {"SSL_CERT_FILE": inside, "REQUESTS_CA_BUNDLE": inside, "PIP_CERT": inside}
    for name, value in os.environ.items():
        local = value.startswith(("/", "file:")) or " file:" in value
        if (name.startswith("PIP_") or name.lower().endswith("_proxy")) and not local:
            env.setdefault(name, value)
    return "".join(f"ENV {name}={json.dumps(value)}\n" for name, value in env.items())


# -- run alone -------------------------------------------------------------------------


def _say(message: str) -> None:
    print(f"docker_standins: {message}", file=sys.stderr, flush=True)


@contextmanager
def engine_with_standins(log_path: Path) -> Iterator[Engine]:
    with Engine(log_path) as engine:
        build_standins(engine.docker)
        yield engine


def main() -> int:
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped like Ctrl-C
    try:
        with engine_with_standins(ROOT / "test-artifacts/logs/dockerd.log") as engine:
            print(f"export DOCKER_HOST=unix://{engine.socket} DOCKER_BUILDKIT=0")
            print("Ctrl-C stops the engine (its images stay in " + str(STATE) + ")")
            while True:
                time.sleep(3600)
    except Unavailable as exc:
        print(f"docker_standins: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
