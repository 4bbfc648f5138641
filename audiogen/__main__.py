"""python -m audiogen"""

from audiogen.cli import main

main()
