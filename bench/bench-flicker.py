#!/usr/bin/python3
"""Temporal quality of the colorize element on real colour clips turned gray.

For each clip and each smoothing value, the clip's frames go through
appsrc (GRAY8, as videoconvert makes it) ! colorize ! appsink, and the
colour that comes out is compared with the clip's own, in CIELAB:

  flicker      mean frame-to-frame change of the predicted ab on static pixels
               (|dL*| < 1 in the true clip), next to the true clip's own;
  error moving mean |ab - true ab| on moving pixels (|dL*| > 8): a smoothing
               that smears shows here;
  error static the same on static pixels;
  resets       at a scene cut (the first clip followed by the second, same
               size): a frame whose output equals the unsmoothed output
               (mean |d ab| < 0.05) was a restart of smoothing.  Found: at
               the cut; missed: not at the cut; false: elsewhere.

  GST_PLUGIN_PATH=build/gst /usr/bin/python3 bench/bench-flicker.py \\
      ../shared/data/video/box.mp4 ../shared/data/video/tree.avi --smoothing 0,0.5,0.8

Prints a Markdown table; say which machine in the README is not needed
(nothing here is timed).
"""
import argparse
import os

import cv2
import gi
import numpy as np

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402


def decode(path, frames, size=None):
    """The first frames of a clip as RGB uint8 arrays (and its frame rate)."""
    scale = f"videoscale ! video/x-raw,width={size[0]},height={size[1]} ! " if size else ""
    pipe = Gst.parse_launch(f'filesrc location="{path}" ! decodebin ! videoconvert ! {scale}'
                            f"videoconvert ! video/x-raw,format=RGB ! appsink name=s sync=false")
    sink = pipe.get_by_name("s")
    pipe.set_state(Gst.State.PLAYING)
    out, fps = [], 30.0
    while len(out) < frames:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        st = sample.get_caps().get_structure(0)
        w, h = st.get_value("width"), st.get_value("height")
        ok, num, den = st.get_fraction("framerate")
        if ok and num:
            fps = num / den
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        out.append(np.frombuffer(info.data, np.uint8).reshape(h, w, 3).copy())
        buf.unmap(info)
    pipe.set_state(Gst.State.NULL)
    return out, fps


def colorize(rgbs, fps, props):
    """The frames (RGB) turned gray and through the element: RGB out."""
    h, w = rgbs[0].shape[:2]
    pipe = Gst.parse_launch(
        f"appsrc name=src format=time caps=video/x-raw,format=GRAY8,width={w},height={h},"
        f"framerate={int(round(fps))}/1 ! colorize {props} ! videoconvert ! "
        f"video/x-raw,format=RGB ! appsink name=s sync=false")
    src, sink = pipe.get_by_name("src"), pipe.get_by_name("s")
    pipe.set_state(Gst.State.PLAYING)
    out = []

    def take(sample):
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        out.append(np.frombuffer(info.data, np.uint8).reshape(h, w, 3).copy())
        buf.unmap(info)

    for i, rgb in enumerate(rgbs):
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        buf = Gst.Buffer.new_wrapped(gray.tobytes())
        buf.pts = int(i * Gst.SECOND / fps)
        buf.duration = int(Gst.SECOND / fps)
        src.emit("push-buffer", buf)
        while True:
            sample = sink.emit("try-pull-sample", 0)
            if sample is None:
                break
            take(sample)
    src.emit("end-of-stream")
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        take(sample)
    pipe.set_state(Gst.State.NULL)
    assert len(out) == len(rgbs), (len(out), len(rgbs))
    return out


def lab(rgb):
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def measure(true_labs, pred_labs):
    flick, flick_true, err_mov, err_stat = [], [], [], []
    for t in range(1, len(true_labs)):
        dL = np.abs(true_labs[t][..., 0] - true_labs[t - 1][..., 0])
        static, moving = dL < 1.0, dL > 8.0
        d_pred = np.linalg.norm(pred_labs[t][..., 1:] - pred_labs[t - 1][..., 1:], axis=-1)
        d_true = np.linalg.norm(true_labs[t][..., 1:] - true_labs[t - 1][..., 1:], axis=-1)
        err = np.linalg.norm(pred_labs[t][..., 1:] - true_labs[t][..., 1:], axis=-1)
        if static.any():
            flick.append(d_pred[static].mean())
            flick_true.append(d_true[static].mean())
            err_stat.append(err[static].mean())
        if moving.any():
            err_mov.append(err[moving].mean())
    return (np.mean(flick), np.mean(flick_true), np.mean(err_mov), np.mean(err_stat))


def resets(pred, plain):
    """Frames (after the first) whose output equals the unsmoothed one."""
    return [t for t in range(1, len(pred))
            if np.linalg.norm(lab(pred[t])[..., 1:] - lab(plain[t])[..., 1:], axis=-1).mean() < 0.05]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clips", nargs=2, help="two colour clips (the second also follows the first at the cut)")
    ap.add_argument("--smoothing", default="0,0.5,0.8")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--cut-frames", type=int, default=120, help="frames of each clip around the cut")
    ap.add_argument("--props", default="", help="further colorize properties, e.g. n-threads=2")
    a = ap.parse_args()
    Gst.init(None)
    values = [float(v) for v in a.smoothing.split(",")]

    print("| clip | smoothing | flicker on static pixels (true clip) | error on moving pixels | "
          "error on static pixels |")
    print("|---|---|---|---|---|")
    for clip in a.clips:
        rgbs, fps = decode(clip, a.frames)
        true_labs = [lab(x) for x in rgbs]
        for s in values:
            out = colorize(rgbs, fps, f"smoothing={s} {a.props}")
            f, ft, em, es = measure(true_labs, [lab(x) for x in out])
            print(f"| {os.path.basename(clip)} ({len(rgbs)} frames) | {s} | {f:.3f} ({ft:.3f}) | "
                  f"{em:.2f} | {es:.2f} |", flush=True)

    first, fps = decode(a.clips[0], a.cut_frames)
    h, w = first[0].shape[:2]
    second, _ = decode(a.clips[1], a.cut_frames, size=(w, h))
    both = first + second
    cut = len(first)
    plain = colorize(both, fps, f"smoothing=0 {a.props}")
    print()
    print(f"| scene cut at frame {cut} of {len(both)} | resets found | missed | false |")
    print("|---|---|---|---|")
    for s in values:
        if s == 0:
            continue
        r = resets(colorize(both, fps, f"smoothing={s} {a.props}"), plain)
        print(f"| smoothing {s} | {int(cut in r)} | {int(cut not in r)} | "
              f"{len([t for t in r if t != cut])} |", flush=True)


if __name__ == "__main__":
    main()
