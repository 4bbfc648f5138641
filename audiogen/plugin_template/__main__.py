"""``python -m audiogen.plugin_template NAME FOLDER``: bring a plugin made from the template up to date."""

import sys
from pathlib import Path

from audiogen.plugin_template import update

print("\n".join(update(sys.argv[1], Path(sys.argv[2]))) or "up to date")
