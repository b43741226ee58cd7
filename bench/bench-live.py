#!/usr/bin/python3
"""The element as a webcam user runs it: a live 640x480 GRAY8 source at
30 frames/s, colorize, a clock-synchronised sink (QoS on), for --seconds.

Prints the frames the source made, the frames delivered to the sink, the
frames QoS dropped, and latency: for each frame, the pipeline clock when it
left colorize, and when the sink rendered it (glass to glass, including the
latency the pipeline configures for a live source), minus the clock when the
source captured it; median and 95th percentile.

  bench/quiet.sh /usr/bin/python3 bench/bench-live.py [--seconds 10] [colorize properties]
"""
import argparse
import os
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("props", nargs="*", help="colorize properties, e.g. n-threads=1")
    a = ap.parse_args()
    os.environ.setdefault("GST_PLUGIN_PATH", os.path.join(ROOT, "build", "gst"))
    os.environ.setdefault("GST_COLORIZE_MODEL", os.path.join(ROOT, "models", "default.safetensors"))
    Gst.init(None)
    frames = int(a.seconds * a.fps)
    desc = (f"videotestsrc is-live=true pattern=ball num-buffers={frames} name=src ! "
            f"video/x-raw,format=GRAY8,width=640,height=480,framerate={a.fps}/1 ! "
            f"colorize name=cz {' '.join(a.props)} ! videoconvert ! "
            "fakesink name=sink sync=true qos=true signal-handoffs=true")
    pipe = Gst.parse_launch(desc)
    sink, cz = pipe.get_by_name("sink"), pipe.get_by_name("cz")
    latencies, dropped = [], [0]

    def on_handoff(element, buf, pad):
        clock = pipe.get_clock()
        if clock and buf.pts != Gst.CLOCK_TIME_NONE:
            now = clock.get_time() - pipe.get_base_time()
            latencies.append((now - buf.pts) / 1e6)
    sink.connect("handoff", on_handoff)
    processed = []

    def on_buffer(pad, info):
        buf, clock = info.get_buffer(), pipe.get_clock()
        if clock and buf.pts != Gst.CLOCK_TIME_NONE:
            processed.append((clock.get_time() - pipe.get_base_time() - buf.pts) / 1e6)
        return Gst.PadProbeReturn.OK
    cz.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_buffer)

    loop = GLib.MainLoop()

    def on_message(bus, msg):
        if msg.type == Gst.MessageType.QOS:
            fmt, processed, drops = msg.parse_qos_stats()
            if msg.src == cz:
                dropped[0] = max(dropped[0], drops)
        elif msg.type in (Gst.MessageType.EOS, Gst.MessageType.ERROR):
            if msg.type == Gst.MessageType.ERROR:
                print(msg.parse_error(), file=sys.stderr)
            loop.quit()
    bus = pipe.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    pipe.set_state(Gst.State.PLAYING)
    loop.run()
    pipe.set_state(Gst.State.NULL)
    def stats(v):
        v = sorted(v)
        return (v[len(v) // 2], v[int(0.95 * (len(v) - 1))]) if v else (float("nan"),) * 2
    med, p95 = stats(latencies)
    pmed, pp95 = stats(processed)
    cpu = open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].split("\n")[0].strip()
    print(f"CPU: {cpu}, {os.cpu_count()} cores; live 640x480 GRAY8 at {a.fps} fps for "
          f"{a.seconds:g} s, colorize {' '.join(a.props) or '(defaults)'}")
    print(f"frames: {frames} captured, {len(latencies)} delivered, {dropped[0]} dropped by QoS "
          f"in colorize")
    print(f"capture -> out of colorize: median {pmed:.1f} ms, 95th percentile {pp95:.1f} ms; "
          f"capture -> sink (glass to glass, with the pipeline's configured latency): "
          f"median {med:.1f} ms, 95th percentile {p95:.1f} ms")


if __name__ == "__main__":
    main()
