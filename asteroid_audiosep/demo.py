"""``asteroid-audiosep demo``: a local web page (Gradio) to hear what queries separate.

The page runs :meth:`~asteroid_audiosep.Separator.separate_waveform`, the path of
``asteroid-audiosep separate`` (same chunking, same queries, outputs written by the same
writer in the same format), on a model loaded once. User text is shown as plain text
(:mod:`~asteroid_audiosep.demo_support`). It binds
to 127.0.0.1 unless told otherwise, never opens a public share link and sends no telemetry:
Gradio's analytics are off and its theme uses the fonts it ships, so the page loads with no
network beyond the machine. Gradio (the ``demo`` extra) is imported only when the page starts.
"""
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import torch

from .audio import audio_info, load_audio
from .demo_sessions import STATE_SESSIONS, QueueSettings, SessionFolders, release_memory, wire_sessions
from .demo_support import (
    MAX_QUERIES,
    clean_message,
    collect_queries,
    describe_format,
    escape_markdown,
    escape_mathtext,
    limits_markdown,
    make_example_clips,
    query_words,
    upload_limit,
)
from .encoders import PrecomputedQueryEncoder
from .errors import AudioSepError
from .outputs import OutputFormat, OutputPlanner, OutputWriter
from .queries import Query
from .scoring import own_scorer, score_heading, waveform_scores
from .separator import Separator

log = logging.getLogger("asteroid_audiosep")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_MINUTES = 30.0
# No "share" button anywhere: it would upload to an outside host.
_IMAGE_BUTTONS = ["download", "fullscreen"]


@dataclass
class DemoOutput:
    """What the page shows for one query.

    Attributes:
        query: the query, in words (its text, or which example sound / picture it is).
        target: the separated sound (written as the CLI writes it for this input).
        residual: the input minus that sound (same format).
        spectrogram: PNG of the target and residual spectrograms, on the input's colour scale.
        score: ``(CLAPScore, CLAPScore-i)`` of the target when the model's encoder can score (docs/scoring.md).
    """

    query: str
    target: Path
    residual: Path
    spectrogram: Path
    score: Optional[Tuple[float, float]] = None


@dataclass
class DemoResult:
    """One request's outputs.

    Attributes:
        spectrogram: PNG of the input's spectrogram.
        outputs: one :class:`DemoOutput` per query.
        format: the outputs' format (:func:`~asteroid_audiosep.outputs.choose_format`).
        seconds: the input's duration.
        warnings: what the writer reported (an integer output scaled down to fit full scale).
    """

    spectrogram: Path
    outputs: List[DemoOutput]
    format: OutputFormat
    seconds: float
    warnings: List[str]


def _mono(wav: torch.Tensor):
    return wav.mean(dim=0).numpy()


def _no_progress(fraction, desc=None):
    return None


class DemoSeparator:
    """The model the page uses (loaded once) and what one request runs.

    Args:
        model: a model package, released model name or checkpoint (see
            :class:`~asteroid_audiosep.Separator`).
        device: ``cpu``, ``cuda``... (default: CUDA when available).
        query_embeddings: a precomputed query-embedding table instead of the model's text
            encoder (offline use; its texts are then the queries the page offers).
        max_minutes: longest input accepted.
        workdir: where outputs are written (default: a temporary folder removed by
            :meth:`close`).
        half: legacy alias of ``precision`` (``"fp16"`` or ``"bf16"``).
        precision: the network's precision (see :mod:`~asteroid_audiosep.precision`).
    """

    def __init__(
        self,
        model: Union[str, os.PathLike, torch.nn.Module],
        device: Optional[str] = None,
        query_embeddings: Optional[Union[str, os.PathLike]] = None,
        max_minutes: float = DEFAULT_MAX_MINUTES,
        workdir: Optional[Union[str, os.PathLike]] = None,
        half: Union[bool, str, None] = None,
        precision: str = "auto",
    ):
        if max_minutes <= 0:
            raise AudioSepError(f"--max-minutes must be positive, got {max_minutes}")
        self.name = type(model).__name__ if isinstance(model, torch.nn.Module) else Path(os.fspath(model)).name
        self.separator = Separator(model, device, precision, query_embeddings=query_embeddings,
                                   half=half or None, progress=False)  # the model: loaded once here, run in _separate
        self.model = self.separator.model
        self.scorer = own_scorer(self.model)  # each output scored when the model's encoder has an audio tower
        self.max_minutes = float(max_minutes)
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="audiosep-demo-"))
        self._runs = SessionFolders(self.workdir)  # outputs of runs given no folder (the last few kept)

    def _query_encoder(self):
        """The model's query encoder (built now if needed), or None when it has none."""
        try:
            return self.model.query_encoder
        except AudioSepError:
            return None

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

    @property
    def query_kinds(self) -> List[str]:
        """What the model's encoder embeds: ``text``, plus ``audio`` (an audio tower, CLAP) and
        ``image`` (an image tower, CLIP)."""
        encoder = self._query_encoder()
        kinds = ["text"]
        if getattr(encoder, "supports_audio", False):
            kinds.append("audio")
        if getattr(encoder, "supports_image", False):
            kinds.append("image")
        return kinds

    @property
    def labels(self) -> List[str]:
        """The queries the model knows when its encoder is a table of precomputed embeddings
        (it can embed nothing else), in the table's order; empty for an open vocabulary."""
        encoder = self._query_encoder()
        if isinstance(encoder, PrecomputedQueryEncoder):
            return sorted(encoder.index, key=encoder.index.get)
        return []

    def describe(self, markdown: bool = True) -> str:
        """Model name, rate, query encoder, query kinds and device: Markdown for the page (names
        escaped), or plain text (``markdown=False``) for the log."""
        bold, text = (lambda s: f"**{s}**", escape_markdown) if markdown else (str, str)
        return (
            f"{bold('Model')} {text(self.name)} · {bold('rate')} {self.model.sample_rate} Hz · "
            f"{bold('query encoder')} {text(self.encoder)} · {bold('queries')} {', '.join(self.query_kinds)} · "
            f"{bold('device')} {self.model.window.device}"
        )

    def read(self, path: Union[str, os.PathLike]) -> Tuple[torch.Tensor, int]:
        """The uploaded or recorded audio, refused when empty or longer than ``max_minutes``."""
        if not path:
            raise AudioSepError("no audio: upload a file or record one first")
        if os.path.isfile(path) and os.path.getsize(path) == 0:
            raise AudioSepError(f"{Path(path).name} is empty (0 bytes): upload an audio file")
        info = audio_info(path)
        if info.frames == 0:
            raise AudioSepError(f"{Path(path).name} holds no audio (0 samples)")
        minutes = info.frames / max(info.samplerate, 1) / 60.0
        if minutes > self.max_minutes:
            raise AudioSepError(
                f"the audio lasts {minutes:.1f} min, more than this page accepts "
                f"({self.max_minutes:g} min, set with --max-minutes): cut it, or use "
                "`asteroid-audiosep separate`, which streams files of any length"
            )
        return load_audio(path)

    @property
    def chunk_seconds(self) -> float:
        """The longest chunk the network sees (the :class:`Separator`'s setting)."""
        return self.separator.chunk_seconds

    @chunk_seconds.setter
    def chunk_seconds(self, seconds: float) -> None:
        self.separator.chunk_seconds = seconds

    def _separate(self, wav: torch.Tensor, rate: int, queries: Sequence[Query], step) -> torch.Tensor:
        """The one place the model runs (one ``separate_waveform`` call), reporting each chunk
        the network finishes through ``step``."""
        from .stream import TensorSignal

        plan = self.separator.runner(torch.zeros(1, self.model.condition_dim)).plan(
            TensorSignal(wav, rate, self.model.sample_rate))
        total, done, caller = max(len(plan), 1), [0], threading.get_ident()

        def chunk_done(*_):
            if threading.get_ident() == caller:  # not another visitor's run (--concurrency above 1)
                done[0] = min(done[0] + 1, total)
                step(0.1 + 0.75 * done[0] / total, desc=f"separating: chunk {done[0]} of {total}")

        step(0.05, desc=f"embedding {len(queries)} query(ies); {total} chunk(s) to separate")
        network = getattr(self.model, "separator", None)  # runs once per chunk
        hook = network.register_forward_hook(chunk_done) if isinstance(network, torch.nn.Module) else None
        try:
            return self.separator.separate_waveform(wav, rate, list(queries))
        finally:
            if hook is not None:
                hook.remove()

    def run(self, path: Union[str, os.PathLike], queries: Sequence[Union[str, Query]], progress=None,
            folder: Optional[Path] = None) -> DemoResult:
        """Separate every query from the audio file and write the outputs as the CLI does.

        Args:
            path: the audio file.
            queries: what :func:`collect_queries` returned (strings are text queries).
            progress: ``progress(fraction, desc=...)`` called at each stage and chunk, or None.
            folder: an empty folder for the outputs (default: a new one in ``workdir``).

        Returns:
            The input's spectrogram, one :class:`DemoOutput` per query, the outputs' format.
        """
        from .report.figures import log_spectrogram, plot_spectrogram_row

        step = progress if progress is not None else _no_progress  # a gr.Progress is falsy
        queries = [Query.text(q) if isinstance(q, str) else q for q in queries]
        step(0.0, desc="reading the audio")
        wav, rate = self.read(path)
        targets = self._separate(wav, rate, queries, step)
        step(0.85, desc="writing the outputs")
        folder = Path(folder) if folder is not None else self._runs.new_run("python")
        source = Path(os.fspath(path))
        planner = OutputPlanner([q.label for q in queries], "both", folder, overwrite=True,
                                inputs=[source])
        specs = planner.plan(source)
        writer = OutputWriter(specs, rate, wav.shape[0], wav.shape[1], planner.formats[source])
        try:
            writer.write(targets, wav)
            written = writer.commit()
        except BaseException as err:
            writer.abort(err)
            raise
        step(0.92, desc="drawing the spectrograms")
        mono = _mono(wav)
        top = log_spectrogram(mono, rate)[2].max()
        spectrum = plot_spectrogram_row([mono], ["Input"], rate, folder / "input.png", top=top)
        files = {(spec.kind, spec.query): path for spec, path in zip(specs, written)}
        scores = waveform_scores(self.scorer, queries, targets, wav, rate)
        outputs = []
        for k, (query, target) in enumerate(zip(queries, targets)):
            words = query_words(query)
            residual = wav - target
            outputs.append(DemoOutput(
                query=words, target=files["target", k], residual=files["residual", k],
                spectrogram=plot_spectrogram_row(
                    [_mono(target), _mono(residual)], [escape_mathtext(f'"{words}"'), "Residual"], rate,
                    folder / f"{files['target', k].stem}.png", top=top), score=scores[k],
            ))
        release_memory()  # memory stays flat from run to run
        step(1.0, desc="done")
        return DemoResult(spectrum, outputs, writer.format, wav.shape[-1] / rate, list(writer.warnings))

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


def page_response(separator: DemoSeparator, audio: Optional[str], text: Optional[str], progress=None,
                  known: Sequence[str] = (), example: Optional[str] = None, picture: Optional[str] = None,
                  folder: Optional[Path] = None) -> list:
    """The page's outputs for one click: status text, input spectrogram, downloads, then per
    slot (query, target, residual, spectrogram). Errors become the status text, without the
    server's paths. Every text the user controls goes into plain-text components."""
    gr = _import_gradio()
    uploads = [audio, example, picture, str(separator.workdir), folder and str(folder)]
    result = None
    try:
        result = separator.run(audio, collect_queries(text, known, example, picture), progress, folder)
    except AudioSepError as err:
        message = f"Error: {clean_message(str(err), uploads)}"
    except Exception as err:  # never a stack trace on the page; the server log has it
        log.exception("the demo failed on %s", audio)
        message = f"Error: unexpected {type(err).__name__}: {clean_message(str(err), uploads)}"
    else:
        message = (f"Separated {len(result.outputs)} query(ies) from {Path(audio).name} ({result.seconds:.1f} s); "
                   f"outputs: {describe_format(result.format)}.")
        message += "".join(f"\nWarning: {clean_message(w, uploads)}" for w in result.warnings)
    outputs = result.outputs if result else []
    files = [str(p) for o in outputs for p in (o.target, o.residual)]
    label = f"Downloads: {describe_format(result.format)}" if result else _DOWNLOADS
    values = [gr.update(value=message), gr.update(value=result and str(result.spectrogram)),
              gr.update(value=files or None, label=label)]
    for k in range(MAX_QUERIES):
        out = outputs[k] if k < len(outputs) else None
        values += [
            gr.update(visible=out is not None, value=score_heading(out.query, out.score) if out else ""),
            gr.update(visible=out is not None, value=str(out.target) if out else None),
            gr.update(visible=out is not None, value=str(out.residual) if out else None),
            gr.update(visible=out is not None, value=str(out.spectrogram) if out else None),
        ]
    return values


_DOWNLOADS = "Downloads (the input's format, as the CLI writes it)"


def _loader(*values):
    return lambda: values


def build_app(separator: DemoSeparator, queue: Optional[QueueSettings] = None,
              sessions: Optional[SessionFolders] = None):
    """The Gradio page (``gradio.Blocks``) around ``separator``; runs queue by ``queue``'s rule,
    each browser session's outputs go to its folder of ``sessions`` (default: in Gradio's cache)."""
    gr = _import_gradio()
    queue, sessions = queue or QueueSettings(), sessions or SessionFolders.in_gradio_cache()
    kinds, labels = separator.query_kinds, separator.labels
    examples = make_example_clips(separator.workdir / "examples", labels[:3] or None)
    markdown = dict(latex_delimiters=[], sanitize_html=True)
    with gr.Blocks(title="AudioSep demo", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown("## AudioSep: separate the sound you describe", **markdown)
        gr.Markdown(separator.describe(), elem_id="model-info", **markdown)
        gr.Markdown(limits_markdown(separator.max_minutes), elem_id="limits", **markdown)
        gr.Markdown(queue.markdown(), elem_id="queue-rule", **markdown)
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                 label="Input audio (upload or record)", buttons=["download"],
                                 elem_id="input-audio")
                text = gr.Textbox(label=f"Queries, one per line (at most {MAX_QUERIES} in all)", lines=2,
                                  placeholder=labels[0] if labels else "dog barking", elem_id="queries")
                known = gr.Dropdown(choices=labels, multiselect=True, visible=bool(labels), elem_id="known-queries",
                                    label=f"Or pick from the {len(labels)} queries this model knows "
                                    "(its precomputed embedding table)")
                example = gr.Audio(sources=["upload", "microphone"], type="filepath", visible="audio" in kinds,
                                   label="And/or an example of the sound (audio query: its CLAP embedding)",
                                   elem_id="query-audio")
                picture = gr.Image(sources=["upload", "clipboard"], type="filepath", format="png",
                                   visible="image" in kinds, buttons=[], elem_id="query-image",
                                   label="And/or a picture of the source (image query: its CLIP embedding)")
                button = gr.Button("Separate", variant="primary", elem_id="separate")
                gr.Markdown("Examples (4 s synthetic clips made when the page starts): a click loads the clip and "
                            "its query", elem_id="examples-info", **markdown)
                with gr.Row():  # buttons, not gr.Examples: its table fails at random in Gradio 6.17's frontend
                    example_buttons = [gr.Button(f"{Path(path).stem.replace('_', ' ')}: {query}", size="sm",
                                                 elem_id=f"example-{k}") for k, (path, query) in enumerate(examples)]
            with gr.Column():
                status = gr.Textbox("Upload or record audio, describe what to separate, press Separate.",
                                    label="Status", interactive=False, lines=2, elem_id="status")
                spectrum = gr.Image(type="filepath", format="png", label="Input spectrogram", buttons=_IMAGE_BUTTONS,
                                    interactive=False, elem_id="input-spectrogram")
                files = gr.File(file_count="multiple", label=_DOWNLOADS, interactive=False, elem_id="downloads")
        slots = []
        for k in range(MAX_QUERIES):
            heading = gr.Textbox(label=f"Query {k + 1}", interactive=False, visible=False, lines=1,
                                 elem_id=f"query-{k}")
            with gr.Row():
                target = gr.Audio(type="filepath", label="Separated", interactive=False, visible=False,
                                  buttons=["download"], elem_id=f"target-{k}")
                residual = gr.Audio(type="filepath", label="Residual (input minus separated)",
                                    interactive=False, visible=False, buttons=["download"],
                                    elem_id=f"residual-{k}")
            image = gr.Image(type="filepath", format="png", label="Spectrograms (input's colour scale)",
                             buttons=_IMAGE_BUTTONS, interactive=False, visible=False, elem_id=f"spectrogram-{k}")
            slots += [heading, target, residual, image]

        def respond(audio_path, query_text, known_labels, example_path, picture_path, request: gr.Request,
                    progress=gr.Progress()):
            folder = sessions.new_run(request.session_hash)  # None: the tab was closed while the run waited
            values = folder and page_response(separator, audio_path, query_text, progress, known_labels,
                                              example_path, picture_path, folder)
            if folder and sessions.served(request.session_hash, folder):  # kept until the session ends
                return values
            return [gr.skip()] * (3 + len(slots))  # nobody to show them to

        private = dict(api_visibility="private")
        for example_button, (path, query) in zip(example_buttons, examples):
            example_button.click(_loader(path, query), None, [audio, text], queue=False, **private)
        # The button is disabled from the click until its run ends (queued runs included).
        busy = button.click(lambda: gr.update(interactive=False, value="Separating..."), None, button,
                            queue=False, **private)
        run = busy.then(respond, inputs=[audio, text, known, example, picture],
                        outputs=[status, spectrum, files, *slots], concurrency_limit=queue.concurrency, **private)
        run.then(lambda: gr.update(interactive=True, value="Separate"), None, button, queue=False, **private)
        wire_sessions(app, sessions, status.keep_in_cache)
    app.sessions, app.queue_settings = sessions, queue
    return app


def serve(
    separator: DemoSeparator,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    block: bool = True,
    queue: Optional[QueueSettings] = None,
):
    """Start the page on ``host:port`` (never a public share link).

    Args:
        separator: the model and its settings.
        host: address to bind: 127.0.0.1 serves this machine only; 0.0.0.0 serves every
            network interface, so anyone who can reach the port can use the page.
        port: TCP port.
        block: wait until interrupted (False returns once the server runs: ``app.close()`` stops it,
            ``app.sessions.close()`` removes the sessions' outputs; otherwise they go at exit).
        queue: the queue's concurrency and size (default :class:`QueueSettings`).

    Returns:
        The running ``gradio.Blocks``.
    """
    app = build_app(separator, queue)
    app.queue(default_concurrency_limit=app.queue_settings.concurrency, max_size=app.queue_settings.max_queue)
    app.launch(
        server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=True,
        show_error=False, ssr_mode=False, mcp_server=False, state_session_capacity=STATE_SESSIONS,
        max_file_size=upload_limit(separator.max_minutes),  # checked by the browser before it uploads
        footer_links=["gradio", "settings"],  # no "Use via API": the page's events are private
        allowed_paths=[str(separator.workdir / "examples")],  # outputs: served from the sessions' folders
        quiet=True,  # gradio's banner suggests share=True, which this page never uses
    )
    where = "this machine only" if host in ("127.0.0.1", "localhost") else "every host that can reach it"
    log.info("serving on http://%s:%d (%s); Ctrl+C stops", host, app.server_port, where)
    if block:
        app.block_thread()
    return app
