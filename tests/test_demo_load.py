"""The demo page under load: the queue's stated settings, one output folder per session that only
its own URLs reach and that goes when the session ends, runs of closed tabs dropped, uploads over
the duration limit refused before decoding, over the size limit refused by the server; several
sessions at once over Gradio's HTTP queue API (the browser's protocol) against a page served in
this process, and (``slow``) the documented load run against ``asteroid-audiosep demo``.

The sessions are the load benchmark's (``benchmarks/bench_demo_load.py``): one client for both.
"""
import sys
import time
from pathlib import Path

import pytest
from helpers import make_demo_package, make_demo_wav

from asteroid_audiosep import AudioSepError
from asteroid_audiosep.cli import build_parser
from asteroid_audiosep.demo import DemoSeparator
from asteroid_audiosep.demo_sessions import DEFAULT_CONCURRENCY, DEFAULT_MAX_QUEUE, QueueSettings, SessionFolders
from asteroid_audiosep.demo_support import upload_limit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_demo_load as load  # noqa: E402  (the benchmark's client, from benchmarks/)

QUERY = "speech"


def test_queue_options_and_the_rule_the_page_states():
    args = build_parser().parse_args(["demo"])
    assert (args.concurrency, args.max_queue) == (DEFAULT_CONCURRENCY, DEFAULT_MAX_QUEUE) == (1, 8)
    args = build_parser().parse_args(["demo", "--concurrency", "2", "--max-queue", "3"])
    rule = QueueSettings(args.concurrency, args.max_queue).markdown()
    assert "2 runs at a time" in rule and "at most **3 waiting**" in rule and "close or reload this tab" in rule
    assert "one run at a time" in QueueSettings().markdown()
    for bad, option in (((0, 4), "--concurrency"), ((1, 0), "--max-queue")):
        with pytest.raises(AudioSepError, match=option):
            QueueSettings(*bad)


def _write(folder: Path, name: str) -> str:
    (folder / name).write_bytes(b"x")
    return str(folder / name)


def test_session_folders_are_private_pruned_and_removed(tmp_path):
    folders = SessionFolders(tmp_path / "root", keep_runs=2)
    gradio_set = set()  # stands for Gradio's temporary-file set
    folders.track(gradio_set)
    a1, b1 = folders.new_run("session-a"), folders.new_run("session-b")
    assert a1.parent != b1.parent and a1.parent.parent == b1.parent.parent == tmp_path / "root"
    assert len(a1.parent.name) == 32 and "session" not in str(a1.relative_to(tmp_path))  # a random token
    files_a1, files_b1 = _write(a1, "x.wav"), _write(b1, "y.wav")
    gradio_set.update([files_a1, files_b1])
    assert folders.served("session-a", a1) and folders.served("session-b", b1)
    assert folders.keep == {files_a1, files_b1}  # kept from Gradio's age-based cleaning

    a2, a3 = folders.new_run("session-a"), folders.new_run("session-a")  # keep_runs=2: a1 goes
    assert not a1.exists() and a2.is_dir() and a3.is_dir() and b1.is_dir()
    assert files_a1 not in folders.keep and files_a1 not in gradio_set

    folders.served("session-a", a3)
    folders.end("session-a")  # the tab was closed
    assert not a3.parent.exists() and b1.is_dir() and folders.sessions == ["session-b"]
    assert folders.new_run("session-a") is None  # a run that waited for a closed tab is dropped

    b2 = folders.new_run("session-b")
    _write(b2, "z.wav")
    folders.end("session-b")  # closed while its run ran: the outputs are removed, not sent
    assert not folders.served("session-b", b2) and not b2.exists()
    assert gradio_set == set() and folders.keep == set()
    folders.close()
    assert not (tmp_path / "root").exists()


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return make_demo_package(tmp_path_factory.mktemp("demo_load_model"))


def test_duration_refused_from_the_header_before_decoding(package, tmp_path, monkeypatch):
    import asteroid_audiosep.demo as demo

    model, table = package
    separator = DemoSeparator(model, "cpu", table, max_minutes=0.05, workdir=tmp_path / "out")  # 3 s
    decoded = []
    monkeypatch.setattr(demo, "load_audio", lambda path: decoded.append(path))
    with pytest.raises(AudioSepError, match="lasts 0.1 min, more than this page accepts"):
        separator.read(make_demo_wav(tmp_path / "long.wav", seconds=6.0, rate=8000, channels=1))
    assert decoded == []  # refused from soundfile's header alone
    separator.read(make_demo_wav(tmp_path / "short.wav", seconds=1.0, rate=8000, channels=1))
    assert len(decoded) == 1  # what a file within the limit goes through


# ------------------------------------------------------------------------------ a served page
@pytest.fixture(scope="module")
def page(package, tmp_path_factory):
    """The page served in this process on 127.0.0.1 (one run at a time, one waiting), with
    Gradio's cache in a folder of its own; yields (url, app, that cache folder)."""
    pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed")
    pytest.importorskip("httpx", reason="httpx (installed with gradio) is missing")
    from asteroid_audiosep.demo import serve

    root = tmp_path_factory.mktemp("demo_load_page")
    patch = pytest.MonkeyPatch()
    patch.setenv("GRADIO_TEMP_DIR", str(root / "gradio"))
    model, table = package
    separator = DemoSeparator(model, "cpu", table, max_minutes=0.5, workdir=root / "work")
    app = serve(separator, "127.0.0.1", load.free_port(), block=False, queue=QueueSettings(1, 1))
    yield f"http://127.0.0.1:{app.server_port}/", app, root
    app.close()
    app.sessions.close()
    patch.undo()
    assert not app.sessions.root.exists()


def test_sessions_at_once_queue_isolation_and_cleanup(page, tmp_path):
    """Three sessions press Separate at the same moment with one run at a time and one waiting:
    at least one is refused (queue full), the others get their own outputs; a fourth session,
    closed while its run waited, costs no run; every folder goes when its session ends."""
    url, app, root = page
    clips = [load.tone_clip(tmp_path / f"clip{k}.wav", 300 + 110 * k, 8.0) for k in range(3)]
    figures = load.run_wave(url, clips, QUERY, timeout=120)
    print({k: v for k, v in figures.items() if k not in ("sessions", "outcome")})
    assert figures["failures"] == []
    assert figures["completed"] >= 1 and figures["refused"] >= 1
    assert figures["completed"] + figures["refused"] == 3
    results = [o for o in figures["outcome"] if isinstance(o, load.RunResult)]
    refusal = next(o for o in figures["outcome"] if isinstance(o, load.QueueFull))
    assert "Queue is full" in str(refusal)
    folders = {Path(u.split("file=", 1)[1]).parents[1] for r in results for u in r.urls}
    assert len(folders) == len(results) == len(app.sessions.sessions)  # one private folder each

    # A session whose tab closes while its run waits: the run is dropped, no folder is made.
    busy, quitter = load.PageSession(url), load.PageSession(url)
    long_path = busy.upload(load.tone_clip(tmp_path / "long.wav", 200, 28.0))
    short_path = quitter.upload(clips[1])
    event = busy.join(long_path, QUERY)
    time.sleep(0.3)  # the long run has started
    quitter.join(short_path, QUERY)
    quitter.close()
    assert busy.wait(event).status.startswith("Separated")
    assert load.wait_until(lambda: app.sessions.dropped == 1, 10)
    assert len(app.sessions.sessions) == len(results) + 1 and quitter.session_hash not in app.sessions.sessions

    # Outputs are reachable only by their own URL: not the folders, not after the session ends.
    stranger = load.PageSession(url)
    served = results[0].urls[0]
    for folder_url in (served.rsplit("/", 1)[0], served.rsplit("/", 2)[0]):
        assert stranger.fetch(folder_url)[0] == 403
    for session in figures["sessions"] + [busy]:
        session.close()
    assert load.wait_until(lambda: not load.session_folders(root), 15), load.session_folders(root)
    assert stranger.fetch(served)[0] == 403 and app.sessions.sessions == []
    stranger.close()


def test_uploads_over_the_limits_are_refused(page, tmp_path):
    """Over the size limit: the server answers 413 (a script that skips the browser's check);
    over the duration limit: the page says so and writes nothing."""
    url, app, root = page
    session = load.PageSession(url)
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (upload_limit(0.5) + 1))
    with pytest.raises(ValueError, match="HTTP 413"):
        session.upload(big)
    long_path = session.upload(make_demo_wav(tmp_path / "long.wav", seconds=40.0, rate=8000, channels=1))
    result = session.separate(long_path, QUERY)
    assert result.status.startswith("Error: the audio lasts 0.7 min") and result.urls == []
    session.close()
    assert load.wait_until(lambda: not load.session_folders(root), 15)


# ------------------------------------------------------------------------------ the load run
@pytest.mark.slow
def test_demo_under_load_figures(package, tmp_path):
    """``asteroid-audiosep demo --concurrency 1 --max-queue 4``: two waves of 8 sessions at once
    (10 s clips). No failure but queue-full refusals; every run gets its own outputs; the
    server's peak RSS stays within 400 MiB of its idle RSS (before the end-of-run memory release
    it reached 479 MiB above); every session folder goes when its session ends, the rest when the
    server stops."""
    pytest.importorskip("gradio", reason="the demo extra (gradio) is not installed")
    model, table = package
    clips = [load.tone_clip(tmp_path / f"clip{k}.wav", 300 + 110 * k, 10.0) for k in range(8)]
    with load.demo_server(model, table, tmp_path, "--concurrency", "1", "--max-queue", "4",
                          "--max-minutes", "1") as (url, proc):
        idle = load.memory_mb(proc.pid)["VmRSS"]
        for wave in range(2):
            figures = load.run_wave(url, clips, QUERY, timeout=180)
            memory = load.memory_mb(proc.pid)
            for session in figures["sessions"]:
                session.close()
            cleaned = load.wait_until(lambda: not load.session_folders(tmp_path), 20)
            print(f"wave {wave + 1}: {figures['requests']} requests, {figures['completed']} completed, "
                  f"{figures['refused']} refused (queue full), {len(figures['failures'])} failures, "
                  f"{figures['wall_s']:.1f} s; RSS {memory['VmRSS']:.0f} MiB, peak {memory['VmHWM']:.0f} MiB "
                  f"(idle {idle:.0f} MiB); folders left {len(load.session_folders(tmp_path))}")
            assert figures["failures"] == []
            assert figures["completed"] >= 4 and figures["refused"] >= 1
            assert figures["completed"] + figures["refused"] == 8
            assert cleaned
        assert memory["VmHWM"] < idle + 400
    assert not list((tmp_path / "gradio").glob("audiosep-sessions-*"))
    assert not [p for p in (tmp_path / "gradio").rglob("*") if p.is_file() and p.suffix == ".wav"]


# ------------------------------------------------------------------------------ a real browser
@pytest.mark.browser
def test_closing_the_tab_removes_its_outputs(page, tmp_path):
    """In headless Chromium: the page states the queue's rule; a separation's outputs are served
    from the tab's own folder, removed when the tab is closed (Gradio's heartbeat, then the
    page's ``unload``). Skipped, with the reason, without chromium/chromedriver/selenium."""
    import shutil

    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if chromium is None or shutil.which("chromedriver") is None:
        pytest.skip("no chromium/chromedriver on PATH: apt-get install chromium chromium-driver (as .ci/run does)")
    pytest.importorskip("selenium", reason="selenium is not installed: pip install -c constraints.txt -e '.[dev]'")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, app, root = page
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 120, poll_frequency=0.25)
        rule = wait.until(lambda d: d.find_element(By.ID, "queue-rule").text)
        assert "one run at a time" in rule and "1 waiting" in rule and "close or reload this tab" in rule
        field = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#input-audio input[type=file]"))
        field[0].send_keys(str(load.tone_clip(tmp_path / "tab.wav", 440, 3.0)))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#input-audio [data-testid^=waveform]"))
        driver.find_element(By.CSS_SELECTOR, "#queries textarea").send_keys(QUERY)
        driver.find_element(By.ID, "separate").click()
        status = wait.until(lambda d: (s := d.find_element(By.CSS_SELECTOR, "#status textarea").get_attribute("value"))
                            .startswith(("Separated", "Error")) and s)
        assert status.startswith("Separated 1 query"), status
        href = driver.find_element(By.CSS_SELECTOR, "#target-0 a[download]").get_attribute("href")
        folders = load.session_folders(root)
        assert len(folders) == 1 and str(folders[0]) in href  # served from the tab's own folder
        page_tab = driver.current_window_handle
        driver.switch_to.new_window("tab")
        other = driver.current_window_handle
        driver.switch_to.window(page_tab)
        driver.close()  # the page's tab is closed
        driver.switch_to.window(other)
        assert load.wait_until(lambda: not load.session_folders(root), 20)
        assert app.sessions.sessions == []
    finally:
        driver.quit()
