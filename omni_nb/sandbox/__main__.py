"""``python -m omni_nb.sandbox``: serve until Ctrl-C (options: ``--help``)."""

from omni_nb.sandbox import main

raise SystemExit(main())
