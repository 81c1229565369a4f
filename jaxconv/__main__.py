"""``python -m jaxconv`` is the ``jaxconv`` command."""

import sys

from .cli import main

sys.exit(main())
