"""The ``jaxconv`` command: ``jaxconv COMMAND [ARGS...]``.

Each command is one module of this package (``jaxconv/cli/<command>.py``, registered in
:data:`COMMANDS`) and exposes ``main(argv) -> int``; it is imported
only when run, so ``jaxconv info`` stays fast and a missing optional dependency only affects the
command that needs it.

Errors: a command that fails on the library's errors (``ValueError`` and its subclasses such as
``CheckpointError``, ``IDXError``, ``ImageLoadError``, ``SpecError``; ``TypeError``; ``OSError``;
``MemoryError``)
prints one line, ``jaxconv COMMAND: message`` naming the input, and exits with status 1; a bad
argument (:class:`UsageError`) exits with 2. A warning (e.g. an unusable autotune cache, which is
ignored and rewritten) prints one line ``jaxconv COMMAND: warning: message``.
``jaxconv --debug COMMAND ...`` (or ``JAXCONV_DEBUG=1``) shows the traceback (and warnings' source
lines) instead.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# command -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "show": ("jaxconv.cli.show", "main", "run an image through a layer stack and save the stages"),
    "train": ("jaxconv.cli.train", "main", "train LeNet-5, ResNet-18 or MobileNetV2 on digits, MNIST or CIFAR-10"),
    "autotune": ("jaxconv.cli.autotune", "main", "measure and cache the fastest algorithm for a shape"),
    "calibrate": ("jaxconv.cli.calibrate", "main", "rescale auto's cost model for this machine (< 1 min)"),
    "explain": ("jaxconv.cli.explain", "main", "explain a LeNet-5 checkpoint's decision on an image (Grad-CAM, IG, ...)"),
    "info": ("jaxconv.cli", "info_main", "versions, backend, devices and the conv algorithms"),
}


DEBUG_ENV = "JAXCONV_DEBUG"
_debug = False
# The library's errors: reported in one line. Anything else is a bug and keeps its traceback.
ERRORS: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError, ImportError, MemoryError)


class UsageError(ValueError):
    """A bad command-line argument: one line on stderr and exit status 2."""


def debug() -> bool:
    """Whether errors show their traceback: ``jaxconv --debug`` or ``JAXCONV_DEBUG=1``."""
    return _debug or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def describe(e: BaseException) -> str:
    """An error as one line (a layer-spec error without its caret drawing)."""
    from_layers = sys.modules.get("jaxconv.layers")
    if from_layers is not None and isinstance(e, from_layers.SpecError):
        return f"bad layer spec {e.spec!r}: {e.reason}"
    return " ".join(str(e).split()) or type(e).__name__


def guard(prog: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Run ``fn``; report the library's errors as one line ``PROG: message``.

    Returns ``fn``'s status, 2 for a :class:`UsageError`, 1 for the other errors of
    :data:`ERRORS`, 130 for Ctrl-C. With :func:`debug` the error propagates (traceback).
    Warnings shown while ``fn`` runs print as one line ``PROG: warning: message``.
    """
    try:
        with warnings.catch_warnings():
            if not debug():
                warnings.showwarning = _one_line_warning(prog)
            return int(fn(*args, **kwargs) or 0)
    except KeyboardInterrupt:
        if debug():
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except ERRORS as e:
        if debug():
            raise
        print(f"{prog}: {describe(e)}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1


def check_out(out: str | os.PathLike) -> Path:
    """An ``--out`` image path checked before any work (:func:`jaxconv._io.check_output`).

    An unsupported format is a :class:`UsageError`; a folder, a read-only file or a missing or
    read-only folder an ``OSError`` (exit 1). Shared by the commands that save a figure.
    """
    from jaxconv._io import check_output

    try:
        return check_output(out, "--out", image=True)
    except ValueError as e:
        raise UsageError(str(e)) from None


def save_out(fig: Any, out: Path, **kwargs: Any) -> None:
    """Save ``fig`` to ``out`` atomically: a failed write leaves whatever was there as it was."""
    from jaxconv._io import save_figure

    try:
        save_figure(fig, out, **kwargs)
    except (OSError, ValueError) as e:
        raise OSError(f"cannot write {str(out)!r}: {' '.join(str(e).split())}") from None


def _one_line_warning(prog: str) -> Callable[..., None]:
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = describe(message) if isinstance(message, BaseException) else " ".join(str(message).split())
        print(f"{prog}: warning: {text.removeprefix('jaxconv: ')}", file=file or sys.stderr)

    return show


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: jaxconv COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "Run 'jaxconv COMMAND --help' for a command's options.",
              f"'jaxconv --debug COMMAND ...' (or {DEBUG_ENV}=1) shows an error's traceback."]
    return "\n".join(lines)


def info_main(argv: Sequence[str] | None = None) -> int:
    """Print versions, backend, devices and the registered convolution algorithms."""
    import argparse
    import platform

    parser = argparse.ArgumentParser(prog="jaxconv info", description=info_main.__doc__)
    parser.parse_args(argv)

    import jax
    import jaxlib

    import jaxconv
    from jaxconv.convolution import algorithms

    print(f"jaxconv   {jaxconv.__version__}")
    print(f"jax       {jax.__version__}")
    print(f"jaxlib    {jaxlib.__version__}")
    print(f"python    {platform.python_version()} ({platform.machine()})")
    print(f"backend   {jax.default_backend()}")
    for d in jax.devices():
        print(f"device    {d.id}: {d.device_kind} ({d.platform})")
    print("algorithms (conv2d(..., algorithm=NAME); default 'auto' picks one per call; error "
          "relative to each output, or to the largest):")
    width = max(len(alg.name) for alg in algorithms())
    for alg in algorithms():
        error = "each output" if alg.error == "elementwise" else "largest   "
        print(f"  {alg.name:<{width}}  {error}  {alg.serves}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    global _debug
    argv = list(sys.argv[1:] if argv is None else argv)
    debug_flag = False
    while argv and argv[0] == "--debug":
        debug_flag = True
        argv.pop(0)
    if debug_flag:
        previous, _debug = _debug, True
        try:
            return main(argv)
        finally:
            _debug = previous
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from jaxconv import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"jaxconv: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name, _ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("jaxconv"):
            print(f"jaxconv {name}: this command is not available in this build ({e})", file=sys.stderr)
        else:
            print(
                f"jaxconv {name}: missing optional dependency {e.name!r}; "
                "install it with: pip install 'jaxconv[all]'",
                file=sys.stderr,
            )
        return 1
    return guard(f"jaxconv {name}", getattr(module, func_name), rest)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
