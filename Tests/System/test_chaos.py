"""The fault campaign's short form (`make chaos` runs all of it): four faults under load, every invariant
checked afterwards (scripts/chaos.py; its report under .local/chaos-short)."""
from support import ROOT, VENV_BIN, run


def test_the_short_fault_campaign_keeps_every_invariant():
    result = run([str(VENV_BIN / "python"), "scripts/chaos.py", "--short", "--build", "debug", "--seed", "1",
                  "--report", str(ROOT / ".local/chaos-short/CHAOS.md")], timeout=1800)
    print(result.stdout[-3000:])
