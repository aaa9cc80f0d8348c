# swift-ext's stack-dump hook (swift_ext/runs/watch.py puts this directory first on PYTHONPATH of what it
# supervises). With SWIFT_EXT_STACK_DIR set, every Python process of the run registers faulthandler on
# SIGUSR2 into <dir>/<host>-<pid>.txt: faulthandler's C handler prints every thread's Python stack even
# when the main thread is stuck inside NCCL or a CUDA call, where a Python-level handler would never
# run. torchrun's own faulthandler.enable() covers only fatal signals (SIGSEGV...), not a dump on demand.
# Forked children (dataloader workers) inherit the handler but are not signalled: only pids with a file.
# Kept import-free of swift_ext so that it costs nothing and works under any interpreter of the run.
import os


def _register():
    stack_dir = os.environ.get("SWIFT_EXT_STACK_DIR")
    if not stack_dir:
        return
    import faulthandler
    import signal
    import socket

    try:
        os.makedirs(stack_dir, exist_ok=True)
        out = open(os.path.join(stack_dir, f"{socket.gethostname()}-{os.getpid()}.txt"), "a")
        faulthandler.register(signal.SIGUSR2, file=out, all_threads=True, chain=False)
    except (OSError, ValueError, RuntimeError, AttributeError):
        return
    globals()["_stack_file"] = out  # faulthandler writes to the fd: keep the file open


def _chain():
    """Run the sitecustomize this one shadows, if the environment has one."""
    import importlib.machinery
    import importlib.util
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None and os.path.abspath(spec.origin or "") != os.path.abspath(__file__):
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_register()
try:
    _chain()
except Exception:  # a broken foreign sitecustomize must not stop training; Python would only warn too
    pass
