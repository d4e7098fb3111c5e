"""servertools: what the Python test servers in Tools/ (devnode, kms, azure, vault), their setup scripts and their
pytest suites share. Stdlib only, so that every tool's own .venv can import it without installing anything.

A tool imports it by putting this folder on sys.path first:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shared"))
This folder holds nothing but this module, so that nothing else in Tools/ becomes importable by accident (with
Tools/ itself on sys.path, Tools/azure would join the Azure SDK's `azure` namespace package).

Servers:        unblock_stop_signals(), exit_on_stop_signals(), tls_server_context(), announce_ready()
Setup scripts:  print_json_result()
Tests:          ServerProcess (a server subprocess with a ready line on stdout), run_tool()
"""

import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time

# ---------------------------------------------------------------------------------------------------------------
# servers


def unblock_stop_signals():
    """A parent may start us with SIGTERM/SIGINT blocked (threads of Swift's Dispatch block every signal, and a
    child inherits the mask): unblock them, or SIGTERM would stay pending forever."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})


def exit_on_stop_signals():
    """SIGTERM / SIGINT exit at once with code 0. Request threads are daemons, and skipping interpreter teardown
    means an in-flight request (e.g. a sign sleeping for --sign-latency-ms) cannot delay the exit."""

    def stop(signum, frame):
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def tls_server_context(cert_file, key_file, client_ca_file=None):
    """A TLS 1.2+ server context for cert_file/key_file; with client_ca_file, a client must present a certificate
    signed by that CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    if client_ca_file is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca_file)
    return context


def announce_ready(stdout_line, stderr_line):
    """The one ready line on stdout (what a parent waits for), then a note on stderr; each flushed."""
    sys.stdout.write(stdout_line + "\n")
    sys.stdout.flush()
    sys.stderr.write(stderr_line + "\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------------------------
# setup scripts


def print_json_result(prog, run, errors, describe=str):
    """A setup script's ending: run()'s result as ONE JSON line on stdout and exit code 0, or, when run() raises one
    of `errors` (an exception class or a tuple of them), "PROG: describe(error)" on stderr and exit code 1."""
    try:
        out = run()
    except errors as e:
        sys.stderr.write(f"{prog}: {describe(e)}\n")
        return 1
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


# ---------------------------------------------------------------------------------------------------------------
# tests


def run_tool(cwd, *args, check=True):
    """`python ARGS...` (this interpreter) in cwd, output captured as text; check: exit code 0 or AssertionError."""
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stderr)
    return proc


class ServerProcess:
    """A server subprocess for tests, ready once it has printed its first stdout line.

    Subclasses define parse_ready(line): it reads what it needs from the ready line, or raises ValueError when the
    line says the server did not start; then the process is killed and AssertionError shows the line and the
    server's stderr. stop() ends it by pid; `with` stops it at the end of the block."""

    ready_what = "ready line"  # how that AssertionError names the line
    stop_timeout = 10  # seconds stop() waits after its signal before SIGKILL

    def __init__(self, command, **popen_args):
        t0 = time.monotonic()
        # stderr to a file, not a pipe nobody reads (a chatty server would block on a full pipe).
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.stderr, text=True, **popen_args)
        self.ready_line = self.proc.stdout.readline()
        self.startup_s = time.monotonic() - t0
        try:
            self.parse_ready(self.ready_line)
        except ValueError:
            self.stop(signal.SIGKILL)
            raise AssertionError(f"no {self.ready_what}: {self.ready_line!r}\n{self.stderr_text()}")

    def parse_ready(self, line):
        raise NotImplementedError

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self, sig=signal.SIGTERM):
        """Sends sig (SIGKILL after stop_timeout s) unless the process has exited; its exit code."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()
