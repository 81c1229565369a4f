"""The ``jaxconv`` command: ``jaxconv COMMAND [ARGS...]``.

Each command lives beside the code it drives and exposes ``main(argv) -> int``; it is imported
only when run, so ``jaxconv info`` stays fast and a missing optional dependency only affects the
command that needs it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# command -> (module, function, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "figures": ("jaxconv.figures", "main", "regenerate the article's figures from the bundled cat"),
    "show": ("jaxconv.figures", "show_main", "run an image through a layer stack and save the stages"),
    "train": ("jaxconv.models.train", "main", "train LeNet-5 on digits or MNIST"),
    "explain": ("jaxconv.cli_explain", "main", "explain a LeNet-5 checkpoint's decision on an image (Grad-CAM, IG, ...)"),
    "bench": ("jaxconv.bench", "main", "time the convolution algorithms across kernel sizes"),
    "autotune": ("jaxconv.conv.autotune", "main", "measure and cache the fastest algorithm for a shape"),
    "info": ("jaxconv.cli", "info_main", "versions, backend, devices and the conv algorithms"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: jaxconv COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "Run 'jaxconv COMMAND --help' for a command's options."]
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
    from jaxconv.conv import algorithms

    print(f"jaxconv   {jaxconv.__version__}")
    print(f"jax       {jax.__version__}")
    print(f"jaxlib    {jaxlib.__version__}")
    print(f"python    {platform.python_version()} ({platform.machine()})")
    print(f"backend   {jax.default_backend()}")
    for d in jax.devices():
        print(f"device    {d.id}: {d.device_kind} ({d.platform})")
    print("algorithms (conv2d(..., algorithm=NAME); default 'auto' picks one per call):")
    width = max(len(alg.name) for alg in algorithms())
    for alg in algorithms():
        print(f"  {alg.name:<{width}}  {alg.serves}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
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
    return int(getattr(module, func_name)(rest) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
