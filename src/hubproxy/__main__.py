"""`python -m hubproxy` is the same as the `hubproxy` console script."""

from hubproxy.cli import main

main()
