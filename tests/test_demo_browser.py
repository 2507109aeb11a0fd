"""``asteroid-audiosep demo`` in headless Chromium: upload, query, separate, listen, errors, and no
request leaves the machine. Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run``
installs them); skipped with the reason otherwise.

Set ``AUDIOSEP_DEMO_SCREENSHOT=docs/demo.png`` to refresh the README's screenshot.
"""
import contextlib
import http.server
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import DEMO_ARGS, QUERIES, make_demo_package, make_demo_wav

from asteroid_audiosep.api import load_separator, separate_waveform
from asteroid_audiosep.demo_support import upload_limit
from asteroid_audiosep.encoders import PrecomputedQueryEncoder

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def _missing() -> str:
    missing = [name for name in ("gradio", "selenium") if not _importable(name)]
    if missing:
        return f"{', '.join(missing)} not installed: pip install -c constraints.txt -e '.[demo,dev]'"
    if CHROMIUM is None or CHROMEDRIVER is None:
        return "no chromium/chromedriver on PATH: apt-get install chromium chromium-driver (as .ci/run does)"
    return ""


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


class _Counter(http.server.BaseHTTPRequestHandler):
    requests: list = []

    def _count(self):
        type(self).requests.append(self.path)
        self.send_response(404)
        self.end_headers()

    do_GET = do_POST = do_HEAD = do_OPTIONS = _count

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def listener():
    """A server on the loopback (never another address) that counts the requests it gets: the
    address the injected markup points at."""
    _Counter.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _Counter.requests
    server.shutdown()
    server.server_close()


def _injected_query(port: int) -> str:
    """Markdown, HTML pointing at the listener, and mathtext, in one query."""
    return f"<img src=http://127.0.0.1:{port}/x.png> $\\frac$ **bold**"


@pytest.fixture(scope="module")
def files(tmp_path_factory, listener):
    if _missing():
        pytest.skip(_missing())
    root = tmp_path_factory.mktemp("demo_browser")
    model, _ = make_demo_package(root)
    torch.manual_seed(1)
    texts = (*QUERIES, "siren", _injected_query(listener[0]))  # the first three are the examples' queries
    table = PrecomputedQueryEncoder(table={q: torch.randn(DEMO_ARGS["condition_dim"]) for q in texts})
    table.save(root / "queries.pt")
    return model, root / "queries.pt", make_demo_wav(root / "mix.wav")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _demo_server(files, log_dir: Path, *options: str):
    """``asteroid-audiosep demo`` on a free port, as a user starts it; its URL."""
    model, table, _ = files
    port = _free_port()
    log_path = log_dir / "server.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "asteroid_audiosep", "demo", "-m", str(model), "--query-embeddings", str(table),
             "--device", "cpu", "--port", str(port), *options],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 300  # a loaded machine
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the demo did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)  # as Ctrl+C: the server closes and removes its outputs
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(files, tmp_path_factory):
    with _demo_server(files, tmp_path_factory.mktemp("demo_server")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_AVOID_STATS"] = "true"  # selenium's own usage statistics
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1450",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _wait(driver, condition, what: str, timeout: float = 120.0):
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.25).until(lambda d: condition(d))
    except Exception as err:
        raise AssertionError(f"timed out waiting for {what}") from err


def _upload(browser, path, player: bool = True) -> None:
    """Give ``path`` to the page's audio input; wait for its player unless ``player`` is False
    (an upload the browser refuses shows none)."""
    from selenium.webdriver.common.by import By

    field = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#input-audio input[type=file]"),
                  "the upload field")
    field[0].send_keys(str(path))
    if player:
        _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#input-audio [data-testid^=waveform]"),
              "the uploaded audio's player")


def _status(driver) -> str:
    return driver.find_element("css selector", "#status textarea").get_attribute("value")


# Fetch the audio a download link / player points at and decode it with the browser's own decoder
# at the file's rate (an OfflineAudioContext does not resample to the device's rate).
_DECODE = """
const [url, channels, frames, rate, done] = arguments;
fetch(url).then(r => r.arrayBuffer())
  .then(buf => new OfflineAudioContext(channels, frames, rate).decodeAudioData(buf))
  .then(audio => done({rate: audio.sampleRate, data: Array.from({length: audio.numberOfChannels},
                                                                (_, c) => Array.from(audio.getChannelData(c)))}))
  .catch(err => done({error: String(err)}));
"""


def test_demo_page_in_chromium(server, browser, files, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    model_path, table, wav_path = files
    query = QUERIES[1]
    browser.get(server)
    info = _wait(browser, lambda d: d.find_element(By.ID, "model-info").text, "the model's description")
    assert "model.pth" in info and "16000 Hz" in info and "precomputed" in info
    limits = browser.find_element(By.ID, "limits").text
    assert "30 min" in limits and "refused by the browser before they are sent" in limits
    with urllib.request.urlopen(server + "config") as response:  # the limit the browser enforces
        assert json.load(response)["max_file_size"] == upload_limit(30)
    footer = browser.find_element(By.TAG_NAME, "footer").text
    assert "API" not in footer and not browser.find_elements(By.CSS_SELECTOR, "a[href*='view=api']")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#known-queries input"), "the table's labels", 30)

    # Upload, type a query, separate.
    _upload(browser, wav_path)
    browser.find_element(By.CSS_SELECTOR, "#queries textarea").send_keys(query)
    browser.find_element(By.ID, "separate").click()
    _wait(browser, lambda d: "Separated" in _status(d) or "Error" in _status(d), "the separation")
    assert _status(browser).startswith("Separated 1 query"), _status(browser)

    # The separated sound's player source decodes to separate_waveform's output.
    wav, rate = sf.read(wav_path, dtype="float32", always_2d=True)
    model = load_separator(str(model_path), "cpu", table)
    expected = separate_waveform(model, torch.from_numpy(wav.T), rate, [query], device="cpu")[0].numpy()
    for slot, reference in (("target-0", expected), ("residual-0", wav.T - expected)):
        link = browser.find_element(By.CSS_SELECTOR, f"#{slot} a[download]")
        href = link.get_attribute("href")
        assert urlparse(href).hostname in LOCAL_HOSTS and link.get_attribute("download").endswith(".wav")
        browser.set_script_timeout(60)
        decoded = browser.execute_async_script(_DECODE, href, wav.shape[1], wav.shape[0], rate)
        assert "error" not in decoded, decoded
        assert decoded["rate"] == rate
        samples = np.asarray(decoded["data"], dtype=np.float32)
        assert samples.shape == reference.shape
        assert np.abs(samples - reference).max() < 1e-4, slot
        with urllib.request.urlopen(href) as response:  # served as the CLI writes it: 32-bit float
            (tmp_path / "served.wav").write_bytes(response.read())
        assert sf.info(tmp_path / "served.wav").subtype == "FLOAT"

    # Spectrograms of the input and the outputs are shown.
    for image_id in ("input-spectrogram", "spectrogram-0"):
        image = browser.find_element(By.CSS_SELECTOR, f"#{image_id} img")
        assert _wait(browser, lambda d: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth", image), image_id) > 100
    assert browser.find_elements(By.CSS_SELECTOR, "#downloads a")
    assert "Downloads: 32-bit float WAV" in browser.find_element(By.ID, "downloads").text
    assert browser.find_element(By.CSS_SELECTOR, "#query-0 textarea, #query-0 input").get_attribute("value") == query
    screenshot = Path(os.environ.get("AUDIOSEP_DEMO_SCREENSHOT") or tmp_path / "demo.png")
    _save_screenshot(browser, screenshot)

    # An empty query is an error message on the page; the page keeps serving.
    box = browser.find_element(By.CSS_SELECTOR, "#queries textarea")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)  # as typed: the page sees the change (clear() bypasses its events)
    browser.find_element(By.ID, "separate").click()
    _wait(browser, lambda d: "Error" in _status(d), "the empty query's message")
    assert "query is empty" in _status(browser) and "Traceback" not in browser.page_source
    assert not any(e.is_displayed() for e in browser.find_elements(By.ID, "target-0"))  # outputs cleared

    # No request went to another host, and nothing failed to load.
    requests = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requests.add(message["params"]["request"]["url"])
    outside = [u for u in requests if urlparse(u).scheme not in ("data", "blob")
               and urlparse(u).hostname not in LOCAL_HOSTS]
    assert not outside, outside
    assert href in requests  # the player itself loaded the output checked above
    failed = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not failed, failed


# Records, on every change of the page, the progress texts shown and whether the button is disabled.
_OBSERVE = """
window.__seen = {texts: [], disabled: false};
const record = () => {
  const text = document.body.innerText;
  for (const m of text.matchAll(/(reading the audio|embedding \\d+ query|separating: chunk \\d+ of \\d+|writing the outputs)/g))
    if (!window.__seen.texts.includes(m[1])) window.__seen.texts.push(m[1]);
  if (document.querySelector('#separate').disabled) window.__seen.disabled = true;
};
new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true,
                                                     attributes: true});
"""


def test_query_shown_literally_with_progress(server, browser, files, listener, tmp_path):
    """Markup, an image on another port and mathtext in a query: separated, shown as typed, the
    listener never asked; progress per stage and chunk on the page; the button disabled meanwhile."""
    from selenium.webdriver.common.by import By

    port, requests = listener
    query = _injected_query(port)
    long_wav = make_demo_wav(tmp_path / "long.wav", seconds=45.0, rate=16000, channels=1)
    browser.get(server)  # a fresh page
    _upload(browser, long_wav)
    browser.find_element(By.CSS_SELECTOR, "#queries textarea").send_keys(query)
    browser.execute_script(_OBSERVE)
    button = browser.find_element(By.ID, "separate")
    button.click()
    _wait(browser, lambda d: "Separated" in _status(d) or "Error" in _status(d), "the separation", timeout=240)
    assert _status(browser).startswith("Separated 1 query"), _status(browser)
    seen = browser.execute_script("return window.__seen")
    chunks = [t for t in seen["texts"] if t.startswith("separating: chunk")]
    assert chunks and chunks[-1].endswith("of 5"), seen  # 45 s in 10 s chunks
    assert seen["disabled"], seen  # disabled during the run, enabled again after it
    _wait(browser, lambda d: button.is_enabled(), "the button enabled again", timeout=30)

    image = browser.find_element(By.CSS_SELECTOR, "#spectrogram-0 img")  # drawn: no mathtext failure
    assert _wait(browser, lambda d: d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth", image), "the spectrogram") > 100
    time.sleep(1.0)  # anything the page would fetch has been asked for by now
    assert requests == []
    assert not browser.find_elements(By.CSS_SELECTOR, f"img[src*=':{port}'], .katex, #query-0 strong, #status strong")
    heading = browser.find_element(By.CSS_SELECTOR, "#query-0 textarea, #query-0 input")
    assert heading.get_attribute("value") == query  # as typed


def test_example_in_the_input_format(server, browser, files):
    """An example button loads its clip (16-bit PCM) and query; the outputs keep 16-bit PCM WAV, as
    the CLI writes them, and the downloads say so."""
    from selenium.webdriver.common.by import By

    browser.get(server)
    _wait(browser, lambda d: d.find_elements(By.ID, "example-0"), "the examples").__getitem__(0).click()
    box = browser.find_element(By.CSS_SELECTOR, "#queries textarea")
    _wait(browser, lambda d: box.get_attribute("value") == QUERIES[0], "the example's query")
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#input-audio [data-testid^=waveform]"),
          "the example's player")
    browser.find_element(By.ID, "separate").click()
    _wait(browser, lambda d: "Separated" in _status(d) or "Error" in _status(d), "the separation")
    assert "beeps_in_noise.wav" in _status(browser) and "outputs: 16-bit PCM WAV" in _status(browser)
    assert "Downloads: 16-bit PCM WAV" in browser.find_element(By.ID, "downloads").text
    href = browser.find_element(By.CSS_SELECTOR, "#target-0 a[download]").get_attribute("href")
    with urllib.request.urlopen(href) as response:
        served = sf.SoundFile(io.BytesIO(response.read()))
    assert (served.format, served.subtype) == ("WAV", "PCM_16")


def test_oversized_file_refused_before_upload(files, browser, tmp_path):
    """With ``--max-minutes 0.005`` (upload limit about 1.1 MiB) a 1.6 MB file is refused by the
    browser with Gradio's message, and nothing is sent to the upload route."""
    from selenium.webdriver.common.by import By

    big = make_demo_wav(tmp_path / "big.wav", seconds=25.0, rate=16000, channels=1)
    assert big.stat().st_size > upload_limit(0.005)
    with _demo_server(files, tmp_path, "--max-minutes", "0.005") as url:
        browser.get(url)
        limits = _wait(browser, lambda d: d.find_element(By.ID, "limits").text, "the limits")
        assert "0.005 min" in limits and "1.11 MB" in limits, limits
        _upload(browser, big, player=False)
        _wait(browser, lambda d: "exceed the maximum allowed size" in d.find_element(By.TAG_NAME, "body").text,
              "the browser's size message", timeout=30)
        uploads = []
        for entry in browser.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                request = message["params"]["request"]
                if request["url"].startswith(url) and urlparse(request["url"]).path.endswith("/upload"):
                    uploads.append((request["method"], request["url"]))  # the file's POST (not its progress stream)
        assert uploads == [], uploads


def _save_screenshot(driver, path: Path) -> None:
    """A small PNG of the page (256-colour palette)."""
    from io import BytesIO

    from PIL import Image

    image = Image.open(BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    image = image.resize((image.width * 2 // 3, image.height * 2 // 3), Image.LANCZOS)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.quantize(colors=256).save(path, optimize=True)
