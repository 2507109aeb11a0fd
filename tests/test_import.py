"""The package imports light: no laion_clap, open_clip or transformers at import."""
import subprocess
import sys


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, asteroid_audiosep; "
        "heavy = [m for m in ('laion_clap', 'clap_module', 'open_clip', 'transformers') if m in sys.modules]; "
        "print(','.join(heavy)); "
        "assert asteroid_audiosep.AudioSep.__name__ == 'AudioSep'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
