"""``python -m polyai_messaging.cli``: the same as the ``polyai-messaging`` command."""

import sys

from ._main import main

sys.exit(main())
