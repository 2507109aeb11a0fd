"""``asteroid-audiosep demo``: a local web page (Gradio) to hear what text queries separate.

The page runs :func:`~asteroid_audiosep.api.separate_waveform`, the path of
``asteroid-audiosep separate`` (same chunking, same outputs), on a model loaded once. It binds
to 127.0.0.1 unless told otherwise, never opens a public share link and sends no telemetry:
Gradio's analytics are off and its theme uses the fonts it ships, so the page loads with no
network beyond the machine. Gradio (the ``demo`` extra) is imported only when the page starts.
"""
import argparse
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import torch

from .api import load_separator, separate_waveform
from .audio import audio_info, load_audio, save_audio
from .errors import AudioSepError
from .outputs import unique_slugs

log = logging.getLogger("asteroid_audiosep")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_MINUTES = 30.0
#: Most queries one request separates (the page has this many output slots).
MAX_QUERIES = 4
_KEEP_RUNS = 16  # request folders kept on disk (older ones are deleted)
# No "share" button anywhere: it would upload to an outside host.
_IMAGE_BUTTONS = ["download", "fullscreen"]


@dataclass
class DemoOutput:
    """What the page shows for one query.

    Attributes:
        query: the query as the model received it.
        target: the separated sound (32-bit float WAV, the input's rate and channels).
        residual: the input minus that sound (same format).
        spectrogram: PNG of the target and residual spectrograms, on the input's colour scale.
    """

    query: str
    target: Path
    residual: Path
    spectrogram: Path


def collect_queries(text: Optional[str]) -> List[str]:
    """The page's queries: one per non-empty line of the text box, duplicates dropped.

    The one place the page's query inputs become the list given to ``separate_waveform``
    (audio-example or image queries are added here).

    Raises:
        AudioSepError: no query, or more than :data:`MAX_QUERIES`.
    """
    queries = list(dict.fromkeys(line.strip() for line in (text or "").splitlines() if line.strip()))
    if not queries:
        raise AudioSepError("the query is empty: type what to separate, e.g. 'dog barking' (one per line)")
    if len(queries) > MAX_QUERIES:
        raise AudioSepError(f"{len(queries)} queries given: the page separates at most {MAX_QUERIES} at once")
    return queries


def _mono(wav: torch.Tensor):
    return wav.mean(dim=0).numpy()


class DemoSeparator:
    """The model the page uses (loaded once) and what one request runs.

    Args:
        model: a model package, released model name or checkpoint (see
            :func:`~asteroid_audiosep.api.load_separator`).
        device: ``cpu``, ``cuda``... (default: CUDA when available).
        query_embeddings: a precomputed query-embedding table instead of the model's text
            encoder (offline use).
        max_minutes: longest input accepted.
        workdir: where outputs are written (default: a temporary folder removed by
            :meth:`close`).
        half: legacy alias of ``precision`` (``"fp16"`` or ``"bf16"``).
        precision: the network's precision (see :mod:`~asteroid_audiosep.precision`).
    """

    def __init__(
        self,
        model: Union[str, os.PathLike],
        device: Optional[str] = None,
        query_embeddings: Optional[Union[str, os.PathLike]] = None,
        max_minutes: float = DEFAULT_MAX_MINUTES,
        workdir: Optional[Union[str, os.PathLike]] = None,
        half: Union[bool, str, None] = None,
        precision: str = "auto",
    ):
        if max_minutes <= 0:
            raise AudioSepError(f"--max-minutes must be positive, got {max_minutes}")
        self.name = Path(os.fspath(model)).name
        self.model = load_separator(model, device, query_embeddings)
        self.max_minutes = float(max_minutes)
        self.half, self.precision = half, precision
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="audiosep-demo-"))
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def encoder(self) -> str:
        """The query encoder, in words (its type and main setting)."""
        encoder = self.model._query_encoder
        spec = self.model.query_encoder_spec
        if encoder is not None:
            try:
                spec = encoder.spec()
            except AudioSepError:
                spec = {"type": type(encoder).__name__}
        if not spec:
            return "none (the model has no query encoder)"
        details = ", ".join(f"{k}={Path(str(v)).name}" for k, v in spec.items() if k != "type" and v)
        return f"{spec.get('type', '?')}" + (f" ({details})" if details else "")

    def describe(self) -> str:
        """Model name, rate and query encoder, as Markdown for the page."""
        return (
            f"**Model** `{self.name}` · **rate** {self.model.sample_rate} Hz · "
            f"**query encoder** {self.encoder} · **device** {self.model.window.device}"
        )

    def read(self, path: Union[str, os.PathLike]) -> Tuple[torch.Tensor, int]:
        """The uploaded or recorded audio, refused when longer than ``max_minutes``."""
        if not path:
            raise AudioSepError("no audio: upload a file or record one first")
        info = audio_info(path)
        minutes = info.frames / max(info.samplerate, 1) / 60.0
        if minutes > self.max_minutes:
            raise AudioSepError(
                f"the audio lasts {minutes:.1f} min, more than this page accepts "
                f"({self.max_minutes:g} min, set with --max-minutes): cut it, or use "
                "`asteroid-audiosep separate`, which streams files of any length"
            )
        return load_audio(path)

    def run(
        self, path: Union[str, os.PathLike], queries: Sequence[str], progress=None
    ) -> Tuple[Path, List[DemoOutput]]:
        """Separate every query from the audio file, as the CLI does.

        Args:
            path: the audio file.
            queries: what :func:`collect_queries` returned.
            progress: ``progress(fraction, desc=...)`` called between steps, or None.

        Returns:
            The input's spectrogram PNG, and one :class:`DemoOutput` per query.
        """
        from .report.figures import log_spectrogram, plot_spectrogram_row

        step = progress or (lambda fraction, desc=None: None)
        step(0.0, desc="reading the audio")
        wav, rate = self.read(path)
        step(0.1, desc=f"separating {wav.shape[-1] / rate:.1f} s of audio, {len(queries)} query(ies)")
        targets = separate_waveform(self.model, wav, rate, queries, device=self.model.window.device,
                                     half=self.half, precision=self.precision)
        step(0.8, desc="writing outputs and spectrograms")
        folder = self._new_folder()
        stem = Path(os.fspath(path)).stem or "audio"
        mono = _mono(wav)
        top = log_spectrogram(mono, rate)[2].max()
        spectrum = plot_spectrogram_row([mono], ["Input"], rate, folder / "input.png", top=top)
        outputs = []
        for query, slug, target in zip(queries, unique_slugs(queries), targets):
            residual = wav - target
            name = f"{stem}__{slug}"
            outputs.append(
                DemoOutput(
                    query=query,
                    target=save_audio(folder / f"{name}.wav", target, rate),
                    residual=save_audio(folder / f"{name}__residual.wav", residual, rate),
                    spectrogram=plot_spectrogram_row(
                        [_mono(target), _mono(residual)], [f'"{query}"', "Residual"], rate,
                        folder / f"{name}.png", top=top,
                    ),
                )
            )
        step(1.0, desc="done")
        return spectrum, outputs

    def _new_folder(self) -> Path:
        runs = sorted(p for p in self.workdir.iterdir() if p.is_dir())
        for old in runs[: max(len(runs) - _KEEP_RUNS + 1, 0)]:
            shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=self.workdir))

    def close(self) -> None:
        """Remove the outputs' folder when this object made it."""
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


# --------------------------------------------------------------------------- the page
def _import_gradio():
    # Before gradio reads it at import: no usage statistics, no version check.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        import gradio as gr
    except ImportError as err:
        raise AudioSepError(
            "the demo needs Gradio: pip install 'asteroid-audiosep[demo]' (with -c constraints.txt)"
        ) from err
    return gr


def page_response(separator: DemoSeparator, audio: Optional[str], text: Optional[str], progress=None) -> list:
    """The page's outputs for one click: status message, input spectrogram, downloads, then per
    slot (heading, target, residual, spectrogram). Errors become the status message."""
    gr = _import_gradio()
    try:
        queries = collect_queries(text)
        spectrum, outputs = separator.run(audio, queries, progress)
    except AudioSepError as err:
        message, spectrum, outputs = f"**Error:** {err}", None, []
    except Exception as err:  # never a stack trace on the page; the server log has it
        log.exception("the demo failed on %s", audio)
        message, spectrum, outputs = f"**Error:** unexpected {type(err).__name__}: {err}", None, []
    else:
        message = f"Separated {len(outputs)} query(ies) from `{Path(audio).name}`."
    files = [str(p) for o in outputs for p in (o.target, o.residual)]
    values = [gr.update(value=message), gr.update(value=spectrum and str(spectrum)),
              gr.update(value=files or None)]
    for k in range(MAX_QUERIES):
        out = outputs[k] if k < len(outputs) else None
        values += [
            gr.update(visible=out is not None, value=f"#### {out.query}" if out else ""),
            gr.update(visible=out is not None, value=str(out.target) if out else None),
            gr.update(visible=out is not None, value=str(out.residual) if out else None),
            gr.update(visible=out is not None, value=str(out.spectrogram) if out else None),
        ]
    return values


def build_app(separator: DemoSeparator):
    """The Gradio page (``gradio.Blocks``) around ``separator``."""
    gr = _import_gradio()
    with gr.Blocks(title="AudioSep demo", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown("## AudioSep: separate the sound you describe")
        gr.Markdown(separator.describe(), elem_id="model-info")
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                 label="Input audio (upload or record)", buttons=["download"],
                                 elem_id="input-audio")
                text = gr.Textbox(label=f"Queries, one per line (at most {MAX_QUERIES})", lines=2,
                                  placeholder="dog barking", elem_id="queries")
                button = gr.Button("Separate", variant="primary", elem_id="separate")
            with gr.Column():
                status = gr.Markdown("Upload or record audio, describe what to separate, press Separate.",
                                     elem_id="status")
                spectrum = gr.Image(type="filepath", format="png", label="Input spectrogram", buttons=_IMAGE_BUTTONS,
                                    interactive=False, elem_id="input-spectrogram")
                files = gr.File(file_count="multiple", label="Downloads (32-bit float WAV, as the CLI writes)",
                                interactive=False, elem_id="downloads")
        slots = []
        for k in range(MAX_QUERIES):
            heading = gr.Markdown(visible=False, elem_id=f"query-{k}")
            with gr.Row():
                target = gr.Audio(type="filepath", label="Separated", interactive=False, visible=False,
                                  buttons=["download"], elem_id=f"target-{k}")
                residual = gr.Audio(type="filepath", label="Residual (input minus separated)",
                                    interactive=False, visible=False, buttons=["download"],
                                    elem_id=f"residual-{k}")
            image = gr.Image(type="filepath", format="png", label="Spectrograms (input's colour scale)",
                             buttons=_IMAGE_BUTTONS, interactive=False, visible=False, elem_id=f"spectrogram-{k}")
            slots += [heading, target, residual, image]

        def respond(audio_path, query_text, progress=gr.Progress()):
            return page_response(separator, audio_path, query_text, progress)

        button.click(respond, inputs=[audio, text], outputs=[status, spectrum, files, *slots],
                     concurrency_limit=1, api_visibility="private")
    return app


def serve(
    separator: DemoSeparator,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    block: bool = True,
):
    """Start the page on ``host:port`` (never a public share link).

    Args:
        separator: the model and its settings.
        host: address to bind: 127.0.0.1 serves this machine only; 0.0.0.0 serves every
            network interface, so anyone who can reach the port can use the page.
        port: TCP port.
        block: wait until interrupted (False returns once the server runs).

    Returns:
        The running ``gradio.Blocks``.
    """
    app = build_app(separator)
    # Larger uploads are refused before they are stored: max_minutes of float32, 8 channels, 192 kHz.
    max_bytes = int(separator.max_minutes * 60 * 192000 * 8 * 4)
    app.queue(default_concurrency_limit=1)
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        prevent_thread_lock=True,
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        max_file_size=max_bytes,
        allowed_paths=[str(separator.workdir)],
        quiet=True,  # gradio's banner suggests share=True, which this page never uses
    )
    where = "this machine only" if host in ("127.0.0.1", "localhost") else "every host that can reach it"
    log.info("serving on http://%s:%d (%s); Ctrl+C stops", host, app.server_port, where)
    if block:
        app.block_thread()
    return app


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``demo`` sub-command's options."""
    parser.add_argument("-m", "--model", default="audiosep-base",
                        help="model package (.pth) or released model name (default: %(default)s)")
    parser.add_argument("--query-embeddings", metavar="FILE",
                        help="precomputed query-embedding table instead of the model's text encoder")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="address to serve on (default: %(default)s, this machine only; 0.0.0.0 "
                        "serves every network interface: anyone who can reach the port can use it)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (default: %(default)s)")
    parser.add_argument("--max-minutes", type=float, default=DEFAULT_MAX_MINUTES,
                        help="longest input the page accepts, in minutes (default: %(default)s)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda when available)")
    from .precision import add_precision_arguments

    add_precision_arguments(parser)


def run_demo(args: argparse.Namespace) -> int:
    """``asteroid-audiosep demo``: load the model, serve the page until interrupted."""
    _import_gradio()  # a missing extra is reported before the model loads
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's startup self-checks
    separator = DemoSeparator(args.model, args.device, args.query_embeddings, args.max_minutes,
                              half=args.half, precision=args.precision)
    log.info("%s", separator.describe().replace("**", "").replace("`", ""))
    try:
        serve(separator, args.host, args.port, block=True)
    finally:
        separator.close()
    return 0
