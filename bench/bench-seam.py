#!/usr/bin/python3
"""How far a film coloured as chunks differs from one run, at the seams.

The clip is first re-encoded with every frame a keyframe (lossless FFV1 in
Matroska, gray), so that a chunk's decoding starts exactly where its warm-up
starts; then it is coloured once whole and, for each --warm-up value, as N
chunks joined with --join; every frame of each joined film is compared with
the single run's:

  GST_PLUGIN_PATH=build/gst /usr/bin/python3 bench/bench-seam.py \\
      ../shared/data/video/box.mp4 --film build/tools/gst-colorize-film \\
      --warm-up 0,1,3,auto --options "--smoothing 0.9"

(or under `meson devenv -C build`).  Prints a Markdown table: frames that
differ, and the largest difference in 8-bit levels.  Nothing is timed.
"""
import argparse
import os
import shlex
import subprocess
import sys
import tempfile

import gi
import numpy as np

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def frames(path):
    """Every frame of a film as RGB uint8 arrays, with its timestamp."""
    pipe = Gst.parse_launch(f'filesrc location="{path}" ! decodebin ! videoconvert ! '
                            "video/x-raw,format=RGB ! appsink name=s sync=false")
    sink = pipe.get_by_name("s")
    pipe.set_state(Gst.State.PLAYING)
    out = []
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        st = sample.get_caps().get_structure(0)
        w, h = st.get_value("width"), st.get_value("height")
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        row = len(info.data) // h
        a = np.frombuffer(info.data, np.uint8).reshape(h, row)[:, :3 * w].copy()
        buf.unmap(info)
        out.append((buf.pts, a))
    pipe.set_state(Gst.State.NULL)
    return out


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip")
    ap.add_argument("--film", default="gst-colorize-film", help="the film command")
    ap.add_argument("--chunks", type=int, default=3)
    ap.add_argument("--warm-up", default="0,1,3,auto",
                    help="seconds, comma-separated; auto: the film command's default")
    ap.add_argument("--options", default="", help="further film options, e.g. '--smoothing 0.9'")
    a = ap.parse_args()
    a.options = shlex.split(a.options)
    Gst.init(None)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "intra.mkv")
        run(["gst-launch-1.0", "-q", "filesrc", f"location={a.clip}", "!", "decodebin", "!",
             "videoconvert", "!", "video/x-raw,format=GRAY8", "!", "avenc_ffv1", "!",
             "matroskamux", "!", "filesink", f"location={src}"])
        whole = os.path.join(tmp, "whole.mkv")
        run([a.film, "--quiet", *a.options, src, whole])
        ref = frames(whole)
        print(f"{os.path.basename(a.clip)} re-encoded all-intra, {len(ref)} frames, "
              f"{a.chunks} chunks, options: {' '.join(a.options) or '(defaults)'}\n")
        print("| warm-up (s) | frames that differ | largest difference (levels of 255) |")
        print("|---|---|---|")
        for wu in a.warm_up.split(","):
            parts = []
            for k in range(1, a.chunks + 1):
                part = os.path.join(tmp, f"part{k}.mkv")
                warm = [] if wu == "auto" else ["--warm-up", wu]
                run([a.film, "--quiet", "--chunk", f"{k}/{a.chunks}", *warm, *a.options, src, part])
                parts.append(part)
            joined = os.path.join(tmp, "joined.mkv")
            run([a.film, "--join", joined, *parts])
            got = frames(joined)
            if [t for t, _ in got] != [t for t, _ in ref]:
                sys.exit(f"warm-up {wu}: the joined film's timestamps differ from the single run's")
            diffs = [int(np.abs(x.astype(np.int16) - y).max()) for (_, x), (_, y) in zip(got, ref)]
            n = sum(d > 0 for d in diffs)
            print(f"| {wu} | {n} of {len(ref)} | {max(diffs)} |")
            os.remove(joined)


if __name__ == "__main__":
    main()
