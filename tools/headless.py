"""The one way a headless-Blender script ends: run main, print any traceback, flush, hard-exit.

bpy can hang at interpreter exit (its add-ons' threads and driver namespace), so scripts that import
bpy end with os._exit, after flushing what they printed. Exit code 0 on success, 1 on any error.
"""

from __future__ import annotations

import os
import sys
import traceback


def run_and_exit(main) -> None:
    code = 0
    try:
        main()
    except BaseException:  # noqa: BLE001  any failure, KeyboardInterrupt included, must still exit
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
