"""Check the two API connections with the hooks' ``test_connection()``: ``python -m tools.check_connections``."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))


def main() -> int:
    """Print one line per connection; exit 1 if any fails."""
    from pogo_invoiced_sync.hooks.invoiced import InvoicedHook
    from pogo_invoiced_sync.hooks.poweroffice_go import PowerOfficeGoHook

    failed = 0
    for hook in (PowerOfficeGoHook(), InvoicedHook()):
        ok, message = hook.test_connection()
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {hook.default_conn_name}: {message}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
