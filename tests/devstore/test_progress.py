"""Progress of long steps: commands report `progress <done> <total> <unit>` on stderr, and the demo's
Ticker turns the latest report into done/total, rate and time left, or a heartbeat when none came."""
import subprocess
import sys
import time

from devstore.progress import Ticker
from shopseg.progress import parse


def test_a_reported_line_reads_back_and_other_lines_are_not_progress():
    script = "from shopseg.progress import progress_line; progress_line(3, 10, 'segments computed')"
    err = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stderr
    assert parse(err) == (3, 10, "segments computed")
    assert parse("Traceback (most recent call last):") is None
    assert parse("progress lots of it") is None


def test_the_ticker_says_done_total_rate_and_time_left():
    ticker = Ticker("backfill", lambda line: None)
    assert ticker.line().startswith("   backfill: working (")          # nothing reported yet: a heartbeat
    ticker.update(1_000, 21_000, "rows mirrored")
    time.sleep(1.0)
    ticker.update(3_000, 21_000, "rows mirrored")
    line = ticker.line()
    assert line.startswith("   backfill: 3,000/21,000 rows mirrored (")
    rate = int(line.split("(")[1].split("/s")[0].replace(",", ""))
    assert 100 <= rate <= 2_100                                        # ~2,000 rows in a second or more
    assert "s left)" in line


def test_a_new_phase_starts_a_new_rate_and_a_finished_one_has_no_time_left():
    ticker = Ticker("backfill", lambda line: None)
    ticker.update(24_960, 24_960, "rows mirrored")
    ticker.update(0, 1, "metrics table rebuilt")
    assert "0/1 metrics table rebuilt" in ticker.line() and "/s" not in ticker.line()
    time.sleep(0.6)
    ticker.update(1, 1, "metrics table rebuilt")
    assert "1/1 metrics table rebuilt" in ticker.line() and "left" not in ticker.line()


def test_the_ticker_speaks_every_few_seconds_while_a_step_runs():
    said: list[str] = []
    with Ticker("tags", said.append, every=0.2) as ticker:
        ticker.update(5, 50, "tag changes written")
        time.sleep(0.9)
        assert len(said) >= 3 and all(line.startswith("   tags: 5/50 tag changes written") for line in said)
        ticker.update(50, 50, "tag changes written")
    assert said[-1].startswith("   tags: 50/50 tag changes written")    # a long step ends with where it ended
    count = len(said)
    time.sleep(0.5)
    assert len(said) == count                                          # and stops with the step


def test_a_short_step_says_nothing_of_its_own():
    said: list[str] = []
    with Ticker("segments", said.append, every=5) as ticker:
        ticker.update(16, 16, "segments computed")
    assert said == []
